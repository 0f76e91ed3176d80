#!/bin/bash
# dist.sh: vxnet's release artifacts in dist/ (make dist):
#   vxnet_VERSION_linux_ARCH.tar.gz  static binaries, unit, manual, README
#   vxnet_VERSION_ARCH.deb           the Debian package (nfpm: deploy/nfpm.yaml)
#   vxnet_VERSION_windows_amd64.zip  vxnet.exe and the README
# for ARCH amd64 and arm64. VERSION comes from the newest v* tag (git
# describe), or 0.0.0+gCOMMIT where there is none.
#
# DIST_DIR (default dist), DIST_ARCHES (default "amd64 arm64") and
# DIST_WINDOWS (default 1) narrow it down, as the package test does.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
dist=${DIST_DIR:-dist}
arches=${DIST_ARCHES:-amd64 arm64}
windows=${DIST_WINDOWS:-1}
NFPM=${NFPM:-$(command -v nfpm || echo "$($GO env GOPATH)/bin/nfpm")}
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if desc=$(git describe --tags --match 'v[0-9]*' 2>/dev/null); then
	# v0.2.0 -> 0.2.0; v0.2.0-3-gabc1234 -> 0.2.0+3.gabc1234 (sorts after
	# 0.2.0); v0.2.0-rc1 -> 0.2.0~rc1 (sorts before it, as Debian wants).
	version=$(echo "${desc#v}" | sed -E -e 's/^([0-9.]+)-([a-z][a-z0-9.]*)/\1~\2/' -e 's/-/+/' -e 's/-/./g')
else
	version="0.0.0+g$commit"
fi
if [ "${1:-}" = --version ]; then # the version alone (make build stamps it)
	echo "$version"
	exit 0
fi
ldflags="-s -w -X main.version=$version -X main.commit=$commit"
rm -rf "$dist"
mkdir -p $dist/build
for arch in $arches; do
	out=$dist/build/linux_$arch
	CGO_ENABLED=0 GOOS=linux GOARCH=$arch $GO build -trimpath -ldflags "$ldflags" -o "$out/vxnet" ./cmd/vxnet
	CGO_ENABLED=0 GOOS=linux GOARCH=$arch $GO build -trimpath -ldflags "-s -w" -o "$out/vxnet-cni" ./cmd/vxnet-cni
done
[ "$windows" = 0 ] || CGO_ENABLED=0 GOOS=windows GOARCH=amd64 $GO build -trimpath -ldflags "$ldflags" -o $dist/build/windows_amd64/vxnet.exe ./cmd/vxnet
# The manual page, from the commands' own --help: the build for this
# machine's architecture prints it.
native=$dist/build/linux_$($GO env GOHOSTARCH)/vxnet
# The page's date is the commit's, so the same commit builds the same page.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
if [ -x "$native" ] && [ "$($GO env GOHOSTOS)" = linux ]; then
	"$native" help --man | gzip -9n > "$dist/build/vxnet.1.gz"
else
	$GO run -ldflags "-X main.version=$version" ./cmd/vxnet help --man | gzip -9n > "$dist/build/vxnet.1.gz"
fi
for arch in $arches; do
	name=vxnet_${version}_linux_$arch
	stage=$dist/build/$name
	mkdir -p "$stage"
	cp $dist/build/linux_$arch/vxnet $dist/build/linux_$arch/vxnet-cni deploy/systemd/vxnet.service $dist/build/vxnet.1.gz README.md "$stage/"
	tar -C $dist/build --owner=0 --group=0 -czf "$dist/$name.tar.gz" "$name"
	# nfpm reads the build's paths as they are: the config is made per
	# architecture.
	sed -e "s/\${GOARCH}/$arch/g" -e "s/\${VXNET_VERSION}/$version/g" -e "s#dist/build/#$dist/build/#g" deploy/nfpm.yaml > "$dist/build/nfpm-$arch.yaml"
	"$NFPM" package --config "$dist/build/nfpm-$arch.yaml" --packager deb --target "$dist/vxnet_${version}_$arch.deb" >/dev/null
done
if [ "$windows" != 0 ]; then
	name=vxnet_${version}_windows_amd64
	mkdir -p "$dist/build/$name"
	cp "$dist/build/windows_amd64/vxnet.exe" README.md "$dist/build/$name/"
	(cd "$dist/build" && zip -qr "../$name.zip" "$name")
fi
rm -rf $dist/build
ls -l "$dist"
