# Sourced by postBuild and start: the demo's environment, and seeding its data once.
# The data directory is data/ in the repository (as `./dev start` uses), unless
# OPENALGO_LAB_DATA_DIR is set; the sandbox trades at any hour unless told otherwise.
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export OPENALGO_LAB_DATA_DIR="${OPENALGO_LAB_DATA_DIR:-$repo_root/data}"
export OPENALGO_LAB_MARKET_HOURS="${OPENALGO_LAB_MARKET_HOURS:-always}"

seed_demo_data() {
  if [ ! -f "$OPENALGO_LAB_DATA_DIR/history.duckdb" ]; then
    mkdir -p "$OPENALGO_LAB_DATA_DIR"
    openalgo-lab demo --days 5   # a week of paper trades to analyse
  fi
}
