#!/usr/bin/env bash
# Installs the Debian peers the test suite drives, if any is missing.
# Tests never skip for a missing tool: this script makes sure none is missing.
#   scripts/ensure-tools.sh          tools for `npm test`
#   scripts/ensure-tools.sh --bench  also Orthanc with DICOMweb (benchmark peer)
set -euo pipefail

need=()
command -v storescu >/dev/null 2>&1 || need+=(dcmtk)
command -v dciodvfy >/dev/null 2>&1 || need+=(dicom3tools)
/usr/bin/python3 -c 'import pydicom' >/dev/null 2>&1 || need+=(python3-pydicom)
/usr/bin/python3 -c 'import sklearn' >/dev/null 2>&1 || need+=(python3-sklearn)
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ "${1:-}" = "--bench" ]; then
  [ -x /usr/sbin/Orthanc ] || need+=(orthanc)
  [ -f /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || need+=(orthanc-dicomweb)
fi

if [ ${#need[@]} -eq 0 ]; then
  echo "ensure-tools: all peers present"
  exit 0
fi

echo "ensure-tools: installing ${need[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "ensure-tools: installed ${need[*]}"
