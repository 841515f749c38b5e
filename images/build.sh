#!/bin/sh
# Builds the test/example images locally, with no registry: a rootfs made
# from Debian's statically linked busybox, imported with `docker import`.
#
#   occopus/busybox:latest             busybox only
#   occopus/busybox-helloworld:latest  /root/start.sh writes $message to
#                                      /tmp/message.txt and stdout, then sleeps
#   occopus/busybox-ping:latest        /root/start.sh pings $target_ip -c 5,
#                                      then sleeps
#   occo-bar:v2                        the captured Occopus store's image:
#                                      receiver serves HTTP on 8080, sender pings
#
# Each is also written as a `docker import`-style rootfs tarball to
# images/out/<name>.tar, to test `origin: file://...tar`.
#
# Idempotent: an image that already exists is not imported again (so repeated
# runs leave no dangling images); FORCE=1 re-imports. NO_DOCKER=1 only writes
# the tarballs.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out="$here/out"
mkdir -p "$out"

# Debian's `busybox` package is dynamically linked, which a bare rootfs cannot
# run; `busybox-static` replaces it.
if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then
	echo "build.sh: installing busybox-static" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	apt-get install -y -qq busybox-static >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

# base_rootfs DIR: a minimal rootfs with busybox and its applets as symlinks.
base_rootfs() {
	d=$1
	mkdir -p "$d/bin" "$d/sbin" "$d/usr/bin" "$d/usr/sbin" "$d/etc" "$d/root" \
		"$d/tmp" "$d/proc" "$d/sys" "$d/dev" "$d/var/run"
	chmod 1777 "$d/tmp"
	cp /bin/busybox "$d/bin/busybox"
	# Applets live in bin, sbin, usr/bin and usr/sbin, all made above.
	for a in $(/bin/busybox --list-full); do
		[ "$a" = bin/busybox ] || ln -sf /bin/busybox "$d/$a"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$d/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$d/etc/group"
}

# start_sh DIR BODY: writes DIR/root/start.sh. The TERM trap, with the
# body and the sleep run in the background and waited for, lets `docker
# stop` end it at once even as PID 1 (which ignores signals it has no
# handler for) and even while the body runs (ping -c 5 takes 4 s).
start_sh() {
	cat >"$1/root/start.sh" <<SCRIPT
#!/bin/sh
trap 'exit 0' TERM INT
( $2 ) & wait \$!
while :; do sleep 3600 & wait \$!; done
SCRIPT
	chmod 755 "$1/root/start.sh"
}

# make_tar DIR NAME: deterministic rootfs tarball (owner root, fixed mtime).
make_tar() {
	tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
		-C "$1" -cf "$out/$2.tar.tmp" .
	mv "$out/$2.tar.tmp" "$out/$2.tar"
}

# import NAME REF CMD
import() {
	[ "${NO_DOCKER:-}" = 1 ] && return 0
	if [ "${FORCE:-}" != 1 ] && docker image inspect "$2" >/dev/null 2>&1; then
		echo "build.sh: $2 exists"
		return 0
	fi
	docker import --change "CMD $3" --change 'WORKDIR /root' \
		"$out/$1.tar" "$2" >/dev/null
	echo "build.sh: imported $2"
}

base_rootfs "$work/busybox"
make_tar "$work/busybox" busybox
import busybox occopus/busybox:latest '["/bin/sh"]'

cp -a "$work/busybox" "$work/helloworld"
start_sh "$work/helloworld" 'echo "$message" | tee /tmp/message.txt'
make_tar "$work/helloworld" busybox-helloworld
import busybox-helloworld occopus/busybox-helloworld:latest '["/root/start.sh"]'

cp -a "$work/busybox" "$work/ping"
start_sh "$work/ping" 'ping "$target_ip" -c 5'
make_tar "$work/ping" busybox-ping
import busybox-ping occopus/busybox-ping:latest '["/root/start.sh"]'

# occo-bar:v2 is the image of the captured Occopus store
# (../shared/occopus-1.10-redis-dump): role=receiver serves $message over
# HTTP on port 8080 (its health check), role=sender pings $target_ip.
cp -a "$work/busybox" "$work/bar"
start_sh "$work/bar" 'case "$role" in receiver) mkdir -p /www; echo "$message" >/www/index.html; httpd -f -p 8080 -h /www ;; sender) ping "$target_ip" -c 5 ;; esac'
make_tar "$work/bar" occo-bar
import occo-bar occo-bar:v2 '["/root/start.sh"]'
