#!/usr/bin/env bash
# Set up Relay on a Debian machine and open it, or run its tests.
#
#   ./setup.sh run [relay args...]   set everything up, then open the program
#   ./setup.sh test [pytest args...] set everything up, then run the whole test suite
#   ./setup.sh env                   set everything up and stop
#   ./setup.sh bundle                set everything up, then build dist/relay/ (PyInstaller) and
#                                    dist/relay_VERSION_ARCH.deb, checked by lintian
#
# "Everything" is: the Debian packages Relay needs (installed with apt-get when run as root,
# otherwise named so an administrator can install them), a virtual env in .venv inside this
# checkout, and the Python packages from pyproject.toml. Running it again refreshes the env
# only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)
mode=${1:-run}
[ $# -gt 0 ] && shift

# Debian packages: Python venv support, Qt/VTK runtime libraries (offscreen GL through OSMesa
# and EGL), a virtual X server for window tests and screenshots, the reference hub (Orthanc +
# DICOMweb plugin; PostgreSQL and its index plugin for a hub's bigger index) and the DICOM peers
# used in tests (dcmtk).
debs=(
  python3 python3-venv python3-pip ca-certificates
  libgl1 libegl1 libx11-6 libdbus-1-3 libfontconfig1 libfreetype6 libglib2.0-0 libxkbcommon0
  libosmesa6 libxrender1 libxi6 libsm6 libice6
  xvfb xauth libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0
  libxcb-shape0 libxcb-xkb1 libxkbcommon-x11-0 libxcb-randr0 libxcb-xinerama0
  orthanc orthanc-dicomweb dcmtk dicom3tools xorriso
  postgresql orthanc-postgresql
)

missing_debs() {
  local p out=()
  for p in "${debs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || out+=("$p")
  done
  echo "${out[@]:-}"
}

if command -v dpkg-query >/dev/null 2>&1; then
  need=$(missing_debs)
  if [ -n "$need" ]; then
    if [ "$(id -u)" = 0 ]; then
      echo "setup: installing Debian packages: $need"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      # shellcheck disable=SC2086
      apt-get install -y -qq --no-install-recommends $need >/dev/null
      # The orthanc package starts a system service; Relay runs its own Orthanc on loopback.
      if command -v systemctl >/dev/null 2>&1; then systemctl disable --now orthanc >/dev/null 2>&1 || true; fi
      service orthanc stop >/dev/null 2>&1 || true
      # Likewise PostgreSQL: the tests start their own server (a hub's index) on loopback.
      if command -v systemctl >/dev/null 2>&1; then systemctl disable --now postgresql >/dev/null 2>&1 || true; fi
      service postgresql stop >/dev/null 2>&1 || true
    else
      echo "setup: these Debian packages are missing; install them as root and run again:"
      echo "  sudo apt-get install $need"
      exit 1
    fi
  fi
else
  echo "setup: not a Debian system (no dpkg); install the equivalents of: ${debs[*]}" >&2
fi

# Python: a venv in the checkout, refreshed when pyproject.toml changes.
py=${PYTHON:-python3}
stamp=.venv/.stamp-pyproject
# (setup.py and the C kernel too: `pip install -e .` builds app/render/_slab in place)
want=$(cat pyproject.toml setup.py app/render/_slab.c | sha256sum | cut -c1-64)
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$py" -m venv .venv
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing Python packages into .venv (a few minutes the first time)"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e ".[test]"
  echo "$want" > "$stamp"
fi

# The bundle's inputs; a bundle built from the same ones is reused (dist/.stamp-bundle), so CI
# can cache dist/ and build/ (PyInstaller's work dir) between runs.
bundle_inputs() {
  { git ls-files -co --exclude-standard app resources packaging docs build.spec CHANGELOG.md \
      pyproject.toml setup.py | LC_ALL=C sort | xargs sha256sum; .venv/bin/pip freeze --exclude-editable; } | sha256sum | cut -c1-64
}

case "$mode" in
  bundle)
    # files for everyone to read and run (a caller's umask, e.g. 077 from a private home, would
    # make a bundle and a package other users cannot start)
    umask 022
    if ! command -v lintian >/dev/null 2>&1 || ! .venv/bin/python -c "import PyInstaller" 2>/dev/null; then
      if [ "$(id -u)" = 0 ] && ! command -v lintian >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends lintian >/dev/null
      fi
      .venv/bin/python -m pip install -q "pyinstaller>=6"
    fi
    command -v lintian >/dev/null 2>&1 || { echo "setup: lintian is missing: sudo apt-get install lintian"; exit 1; }
    want_bundle=$(bundle_inputs)
    if [ -f dist/.stamp-bundle ] && [ "$(cat dist/.stamp-bundle)" = "$want_bundle" ] \
        && [ -x dist/relay/relay ] && ls dist/relay_*.deb >/dev/null 2>&1; then
      echo "setup: bundle up to date (dist/relay, $(ls dist/relay_*.deb))"
      exit 0
    fi
    rm -f dist/.stamp-bundle dist/relay_*.deb
    start=$SECONDS
    .venv/bin/pyinstaller build.spec --noconfirm --log-level WARN
    echo "setup: PyInstaller took $((SECONDS - start)) s"
    start=$SECONDS
    deb=$(python3 packaging/linux/build_deb.py)
    echo "setup: the .deb took $((SECONDS - start)) s"
    # lintian: errors fail the build; warnings are printed (overrides: packaging/linux/lintian-overrides).
    # It takes minutes on a 500 MB package, and what it checks (the package's layout, metadata and
    # libraries) changes with packaging/, build.spec and the Python packages, not with Relay's own
    # code: it runs again only when those change (dist/.stamp-lintian), or always with RELAY_LINTIAN=always.
    want_lint=$({ cat build.spec packaging/linux/*; .venv/bin/pip freeze --exclude-editable; } | sha256sum | cut -c1-64)
    if [ "${RELAY_LINTIAN:-}" = always ] || [ ! -f dist/.stamp-lintian ] || [ "$(cat dist/.stamp-lintian)" != "$want_lint" ]; then
      rm -f dist/.stamp-lintian
      start=$SECONDS
      report=$(lintian --tag-display-limit 0 "$deb" 2>&1 | grep -v "^running with root" || true)
      echo "setup: lintian took $((SECONDS - start)) s"
      [ -n "$report" ] && echo "$report"
      if echo "$report" | grep -q "^E: "; then echo "setup: lintian found errors in $deb" >&2; exit 1; fi
      echo "$want_lint" > dist/.stamp-lintian
    else
      echo "setup: lintian skipped (package layout unchanged since it last passed; RELAY_LINTIAN=always runs it)"
    fi
    echo "$want_bundle" > dist/.stamp-bundle
    echo "setup: built dist/relay ($(du -sh dist/relay | cut -f1)) and $deb ($(du -h "$deb" | cut -f1))"
    ;;
  env)
    echo "setup: ready ($here/.venv)"
    ;;
  run)
    if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ] && [ "${QT_QPA_PLATFORM:-}" = "" ]; then
      echo "setup: no display found; opening Relay on a virtual screen is pointless." >&2
      echo "       Run it from a desktop session, or use the command line: .venv/bin/relay --help" >&2
      exit 1
    fi
    exec .venv/bin/relay "$@"
    ;;
  test)
    export QT_QPA_PLATFORM=offscreen
    export VTK_DEFAULT_OPENGL_WINDOW=vtkOSOpenGLRenderWindow
    export TCP_NODELAY=1
    export PYTHONDONTWRITEBYTECODE=1
    # GL and real-window tests need an X server; xvfb-run gives each run its own.
    # The whole suite runs in two worker processes (pytest-xdist, a test file per worker at a
    # time): most tests wait on servers, disks and subprocesses, so two at once nearly halve
    # the run (38 -> 16 min here). RELAY_TEST_WORKERS=0 runs it in one process.
    # A worker that dies (a crash, or pytest-timeout cutting a hung test) ends the run at once,
    # reported as a failure: replacing it, xdist 3.8's loadfile scheduler can deadlock
    # (pytest-xdist #1378), and a CI run once waited out CI's 90 minutes that way.
    if [ $# -eq 0 ] && [ "${RELAY_TEST_WORKERS:-2}" != 0 ]; then
      set -- -n "${RELAY_TEST_WORKERS:-2}" --dist loadfile --max-worker-restart 0
    fi
    if [ -t 0 ]; then  # at a terminal: Ctrl-C reaches pytest as usual
      exec xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python -m pytest "$@"
    fi
    # Unattended (CI): a run that hangs anyway is cut, with a message, before CI's own limit.
    limit=${RELAY_TEST_LIMIT:-4800}
    status=0
    timeout --kill-after=30 "$limit" \
      xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python -m pytest "$@" || status=$?
    if [ "$status" = 124 ] || [ "$status" = 137 ]; then
      echo "setup: the tests had not ended after $limit s (RELAY_TEST_LIMIT): cut" >&2
    fi
    exit "$status"
    ;;
  *)
    echo "usage: ./setup.sh run|test|env|bundle [args...]" >&2
    exit 2
    ;;
esac
