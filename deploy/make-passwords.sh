#!/usr/bin/env bash
# Make the broker's password file and access control list from a list of users.
#
#   deploy/make-passwords.sh USERS OUT_DIR
#
# USERS has one user a line, "role name [password] [districts=A,B,...]" (# starts a
# comment; a password "-" or none: generated); see deploy/users.example. Roles:
#   core      a core: ansim-core (an unpartitioned city; its rights are in deploy/acl),
#             or ansim-core-<partition> for the core of one partition (its client id;
#             the same rights, generated here, and presence/<name>)
#   operator  writes ansim/v1/cmd/<name> and cmd/<name>/<partition> and presence/<name>,
#             reads presence and its replies (observers, operators and supervisors alike:
#             the core checks the role, the broker makes the <name> in the topic
#             trustworthy), and state: all of it (state/#), or with districts=A,B a
#             scoped seat's: those districts' incidents, units, cameras and closed
#             lists, and the summaries and shelters (the same districts as the core's
#             [scopes] for the operator: the core refuses its commands elsewhere)
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

# One state filter a line: what a seat scoped to district $1 may read (topics.district_state).
district_reads() {
    printf 'topic read ansim/v1/state/incident/%s/#\n' "$1"
    printf 'topic read ansim/v1/state/responder/%s/#\n' "$1"
    printf 'topic read ansim/v1/state/cameras/%s/#\n' "$1"
    printf 'topic read ansim/v1/state/closed/%s\n' "$1"
}

line_no=0
while IFS= read -r line || [[ -n $line ]]; do
    line_no=$((line_no + 1))
    line=${line%%#*}
    read -r -a fields <<<"$line" || true
    [[ ${#fields[@]} -gt 0 ]] || continue
    role=${fields[0]}
    name=${fields[1]:-}
    password=""
    districts=""
    has_districts=""
    where="$users:$line_no"
    for field in "${fields[@]:2}"; do
        if [[ $field == districts=* ]]; then
            if [[ -n $has_districts ]]; then
                echo "$0: $where: districts= given twice" >&2
                exit 1
            fi
            has_districts=1
            districts=${field#districts=}
        elif [[ -z $password ]]; then
            password=$field
        else
            echo "$0: $where: expected 'role name [password] [districts=A,B,...]'" >&2
            exit 1
        fi
    done
    [[ $password != "-" ]] || password=""
    if [[ -z $name ]]; then
        echo "$0: $where: expected 'role name [password] [districts=A,B,...]'" >&2
        exit 1
    fi
    if [[ ! $name =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ ]]; then
        echo "$0: $where: bad name '$name' (up to 64 letters, digits, . _ -)" >&2
        exit 1
    fi
    if [[ $role != core && $name == ansim-core* ]]; then
        # The cores lend units to each other with commands from their own ids: an
        # operator named so could tie up every partition's units (docs/partitions.md).
        echo "$0: $where: names starting with ansim-core are the cores' (role core)" >&2
        exit 1
    fi
    if [[ -n ${seen[$name]:-} ]]; then
        echo "$0: $where: '$name' is listed twice" >&2
        exit 1
    fi
    seen[$name]=1
    if [[ -n $has_districts && $role != operator ]]; then
        echo "$0: $where: districts= is for an operator's seat, not a $role" >&2
        exit 1
    fi
    scope=()
    if [[ -n $has_districts ]]; then
        declare -A in_scope=()
        IFS=, read -r -a scope <<<"$districts"
        if [[ ${#scope[@]} -eq 0 || $districts == *, || $districts == ,* ]]; then
            echo "$0: $where: districts= names no district (districts=Mapo-gu,Jung-gu)" >&2
            exit 1
        fi
        for district in "${scope[@]}"; do
            # A district is a topic level: topics.DistrictName (letters, digits, . _ -).
            if [[ ! $district =~ ^[A-Za-z0-9._-]{1,64}$ ]]; then
                echo "$0: $where: bad district '$district' (up to 64 letters, digits, . _ -)" >&2
                exit 1
            fi
            if [[ -n ${in_scope[$district]:-} ]]; then
                echo "$0: $where: district '$district' is listed twice" >&2
                exit 1
            fi
            in_scope[$district]=1
        done
        unset in_scope
    fi
    if [[ -z $password ]]; then
        password=${previous[$name]:-$(openssl rand -base64 18 | tr -d '/+=\n')}
    fi
    case $role in
        core)
            if [[ $name == ansim-core ]]; then
                : # an unpartitioned city's core: its block is in deploy/acl
            elif [[ $name =~ ^ansim-core-[A-Za-z0-9._-]+$ ]]; then
                # A partition's core (its client id, [core] client_id): the same rights.
                {
                    printf '\nuser %s\n' "$name"
                    printf 'topic read %s\n' 'ansim/v1/raw/#' 'ansim/v1/cmd/#' \
                        'ansim/v1/presence/#' '$SYS/#'
                    # cmd/<name>/<partition>: a LEND or RETURN of a unit across a
                    # border, to another partition's core (docs/partitions.md).
                    printf 'topic write %s\n' 'ansim/v1/state/#' 'ansim/v1/reply/#' \
                        'ansim/v1/receipt/#' "ansim/v1/presence/$name" "ansim/v1/cmd/$name/+"
                } >>"$acl"
            else
                echo "$0: $where: a core's user is ansim-core, or ansim-core-<partition>" \
                    "for a partition's core (its client id)" >&2
                exit 1
            fi
            ;;
        operator)
            {
                printf '\nuser %s\n' "$name"
                # Without a partition (the default partition's core) or to one partition.
                printf 'topic write ansim/v1/cmd/%s\n' "$name"
                printf 'topic write ansim/v1/cmd/%s/+\n' "$name"
                printf 'topic write ansim/v1/presence/%s\n' "$name"
                if [[ -z $has_districts ]]; then
                    printf 'topic read ansim/v1/state/#\n'
                else
                    for district in "${scope[@]}"; do
                        district_reads "$district"
                    done
                    printf 'topic read %s\n' 'ansim/v1/state/summary/#' 'ansim/v1/state/shift/#' 'ansim/v1/state/shelters'
                fi
                printf 'topic read ansim/v1/presence/+\n'
            } >>"$acl"
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
