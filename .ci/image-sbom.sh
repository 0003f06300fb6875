#!/usr/bin/env bash
# CycloneDX SBOM of the container image's packages (called by .ci/supply-chain.sh). There is no
# Docker engine here, so the package set is derived the way the base image is made: Debian's
# `debian:<suite>-slim` images are a debootstrap `minbase` of the suite (debuerreotype), slimmed
# of documentation files, not of packages; the runtime stage of deploy/Dockerfile installs no
# package on top. `debootstrap --print-debs` resolves that set against the configured Debian
# mirror, apt gives each package's candidate version. Where a Docker engine exists,
# `docker sbom` / `syft` of the built image is the authoritative one (docs/releasing.md).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:?usage: image-sbom.sh OUT.json}"

base="$(sed -n 's/^FROM \(debian:[a-z]*-slim\) AS runtime$/\1/p' deploy/Dockerfile)"
suite="${base#debian:}"; suite="${suite%-slim}"
[ -n "$suite" ] || { echo "deploy/Dockerfile: no 'FROM debian:<suite>-slim AS runtime'" >&2; exit 1; }
command -v debootstrap >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q debootstrap >/dev/null; }
mirror="$(sed -n 's/^URIs: \(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)"
scratch="$(mktemp -d)"; trap 'rm -rf "$scratch"' EXIT
debootstrap --print-debs --variant=minbase "$suite" "$scratch/root" "${mirror:-http://deb.debian.org/debian}" \
  >"$scratch/debs" 2>"$scratch/log"
for p in $(cat "$scratch/debs"); do
  v="$(apt-cache show --no-all-versions "$p" 2>/dev/null | sed -n 's/^Version: //p' | head -n 1)"
  printf '%s %s\n' "$p" "${v:-unknown}"
done >"$scratch/versions"
python3 - "$out" "$base" "$scratch/versions" "$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)" <<'PY'
import json, sys, uuid, datetime
out, base, versions, release = sys.argv[1:5]
components = []
for line in open(versions):
    name, version = line.split()
    components.append({
        "type": "library", "name": name, "version": version,
        "purl": f"pkg:deb/debian/{name}@{version}?arch=amd64&distro={base.split(':')[1]}",
    })
for binary in ["qilu-registry", "qilu-review", "qilu-awards", "qilu"]:
    components.append({"type": "application", "name": binary, "version": release,
                       "description": f"see {binary}_bin.cdx.json for its crates"})
bom = {
    "bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
    "serialNumber": f"urn:uuid:{uuid.uuid4()}",
    "metadata": {
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "component": {"type": "container", "name": "qilu", "version": release,
                      "description": f"runtime image: {base} + the Qilu binaries (deploy/Dockerfile)"},
    },
    "components": components,
}
json.dump(bom, open(out, "w"), indent=1, ensure_ascii=False)
unknown = [c["name"] for c in components if c.get("version") == "unknown"]
assert len(components) > 50 and not unknown, f"package versions not found: {unknown}"
print(f"{out.split('/')[-1]}: CycloneDX 1.5, {len(components)} components ({base} minbase packages + binaries)")
PY
