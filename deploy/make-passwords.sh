#!/usr/bin/env bash
# Make the broker's password file and access control list from a list of users.
#
#   deploy/make-passwords.sh USERS OUT_DIR
#
# USERS has one user a line, "role name [password]" (# starts a comment); see
# deploy/users.example. Roles:
#   core      the core; the name must be ansim-core (its rights are in deploy/acl)
#   operator  writes ansim/v1/cmd/<name> and presence/<name>, reads state, presence
#             and its replies (observers, operators and supervisors alike: the core
#             checks the role, the broker makes the <name> in the topic trustworthy)
#   source    writes ansim/v1/raw/<name>/#, reads its receipts
#   gateway   writes every raw topic and reads every receipt (an HTTP gateway or
#             adapter publishing for many sources; give it to nothing else)
# The broker makes each user name its client id (use_username_as_clientid): one
# session and one live connection per user, so list a user per console seat, per
# gateway and per simulator; a second connection as the same user replaces the first.
#
# Writes, readable by their owner only:
#   OUT_DIR/passwords    for password_file (hashed with mosquitto_passwd)
#   OUT_DIR/acl          for acl_file: deploy/acl plus one block per user
#   OUT_DIR/credentials  "name password" for every user, to hand out; a password
#                        generated on an earlier run is reused from here
set -euo pipefail

usage() {
    echo "usage: $0 USERS OUT_DIR" >&2
    exit 2
}

[[ $# -eq 2 ]] || usage
users=$1
out=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
static_acl=$here/acl
command -v mosquitto_passwd >/dev/null || { echo "$0: mosquitto_passwd not found" >&2; exit 1; }
[[ -r $users ]] || { echo "$0: cannot read $users" >&2; exit 1; }
[[ -r $static_acl ]] || { echo "$0: cannot read $static_acl" >&2; exit 1; }

umask 077
mkdir -p "$out"

declare -A previous=()
if [[ -r $out/credentials ]]; then
    while read -r name password _; do
        [[ -n ${name:-} && -n ${password:-} ]] && previous[$name]=$password
    done <"$out/credentials"
fi

declare -A seen=()
plain=$(mktemp "$out/.plain.XXXXXX")
acl=$(mktemp "$out/.acl.XXXXXX")
credentials=$(mktemp "$out/.credentials.XXXXXX")
trap 'rm -f "$plain" "$acl" "$credentials"' EXIT
cat "$static_acl" >"$acl"

line_no=0
while IFS= read -r line || [[ -n $line ]]; do
    line_no=$((line_no + 1))
    line=${line%%#*}
    read -r role name password extra <<<"$line" || true
    [[ -n ${role:-} ]] || continue
    where="$users:$line_no"
    if [[ -n ${extra:-} || -z ${name:-} ]]; then
        echo "$0: $where: expected 'role name [password]'" >&2
        exit 1
    fi
    if [[ ! $name =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ ]]; then
        echo "$0: $where: bad name '$name' (up to 64 letters, digits, . _ -)" >&2
        exit 1
    fi
    if [[ -n ${seen[$name]:-} ]]; then
        echo "$0: $where: '$name' is listed twice" >&2
        exit 1
    fi
    seen[$name]=1
    if [[ -z ${password:-} ]]; then
        password=${previous[$name]:-$(openssl rand -base64 18 | tr -d '/+=\n')}
    fi
    case $role in
        core)
            if [[ $name != ansim-core ]]; then
                echo "$0: $where: the core's user is ansim-core (deploy/acl grants its rights)" >&2
                exit 1
            fi
            ;;
        operator)
            printf '\nuser %s\ntopic write ansim/v1/cmd/%s\ntopic write ansim/v1/presence/%s\ntopic read ansim/v1/state/#\ntopic read ansim/v1/presence/+\n' \
                "$name" "$name" "$name" >>"$acl"
            ;;
        source)
            printf '\nuser %s\ntopic write ansim/v1/raw/%s/#\n' "$name" "$name" >>"$acl"
            ;;
        gateway)
            printf '\nuser %s\ntopic write ansim/v1/raw/#\ntopic read ansim/v1/receipt/#\n' \
                "$name" >>"$acl"
            ;;
        *)
            echo "$0: $where: unknown role '$role' (core, operator, source, gateway)" >&2
            exit 1
            ;;
    esac
    printf '%s:%s\n' "$name" "$password" >>"$plain"
    printf '%s %s\n' "$name" "$password" >>"$credentials"
done <"$users"

[[ ${#seen[@]} -gt 0 ]] || { echo "$0: no users in $users" >&2; exit 1; }
mosquitto_passwd -U "$plain" >/dev/null
mv "$plain" "$out/passwords"
mv "$acl" "$out/acl"
mv "$credentials" "$out/credentials"
echo "$out/passwords, $out/acl, $out/credentials: ${#seen[@]} users"
