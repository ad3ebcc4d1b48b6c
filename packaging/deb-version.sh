#!/bin/sh
# deb-version.sh — the Debian version of the working tree, from git:
#   tag v1.2.3 on HEAD            -> 1.2.3
#   4 commits after v1.2.3        -> 1.2.3+git4.abc1234
#   no tag yet                    -> 0.0.0~git20261127210102.abc1234
# The commit time keeps untagged builds ordered, so each newer build is an
# upgrade for apt. A dirty tree gets ".dirty".
set -eu
hash=$(git rev-parse --short=7 HEAD)
if desc=$(git describe --tags --match 'v[0-9]*' 2>/dev/null); then
	case $desc in
	*-*-g*)
		base=${desc%-*-g*}
		n=${desc#"$base"-}
		n=${n%-g*}
		v="${base#v}+git$n.$hash"
		;;
	*) v=${desc#v} ;;
	esac
else
	v="0.0.0~git$(TZ=UTC git show -s --format=%cd --date=format-local:%Y%m%d%H%M%S HEAD).$hash"
fi
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
	v="$v.dirty"
fi
echo "$v"
