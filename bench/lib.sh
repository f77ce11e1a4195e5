# shellcheck shell=bash disable=SC2034 # variables used by the scripts that source it
# bench/lib.sh: what bench/compare, bench/profile and bench/syscalls share.
# Sourced, not run.
#
# Every process started through start_proc is recorded and stopped by the
# EXIT trap (SIGTERM, then SIGKILL for it and its children after a grace
# period), so an interrupted or failed run leaves nothing behind.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
export PATH="$PATH:/usr/local/go/bin"

# CPU placement: the load generator and the backends on one core, the
# proxy alone on the other. Override with BENCH_CLIENT_CPU / BENCH_PROXY_CPU.
CLIENT_CPU=${BENCH_CLIENT_CPU:-0}
PROXY_CPU=${BENCH_PROXY_CPU:-1}
# The proxy's cores (bench/compare --proxy-cpus N: PROXY_CPU and the next
# N-1 cores, wrapping) and how many: GOMAXPROCS, HAProxy's nbthread and
# nginx's worker_processes. The backends' cores (--placement shared: the
# proxy's first core).
PROXY_CPUS=$PROXY_CPU
PROXY_NCPU=1
BACKEND_CPU=$CLIENT_CPU
PORT_BASE=${BENCH_PORT_BASE:-18080}
# Ports: backends n1..n3, the direct backend, and one per proxy.
BACKEND_PORTS=($((PORT_BASE + 11)) $((PORT_BASE + 12)) $((PORT_BASE + 13)))
DIRECT_PORT=$((PORT_BASE + 14))
# A session id as Tether's session library makes them: 128 random bits in hex.
STICKY_COOKIE="JSESSIONID=8f3a2b9c1d4e5f60718293a4b5c6d7e8.n2"

STARTED=()        # pids of the processes this run started
BACKEND_PIDS=()   # pids of the backends n1..n3
WORK=""           # scratch directory, removed at exit unless BENCH_KEEP=1

log() { printf '== %s %s\n' "$(date +%T)" "$*" >&2; }
die() {
	printf '\nbench: FAILED: %s\n' "$*" >&2
	exit 1
}

# alive PID: the process exists and is not a zombie.
alive() {
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[[ $st != Z* ]]
}

# tree_pids PID: PID and its descendants.
tree_pids() {
	local c
	echo "$1"
	for c in $(pgrep -P "$1" 2>/dev/null); do tree_pids "$c"; done
}

# stop_proc PID: SIGTERM, wait up to 10 s, then SIGKILL the process and its
# children (httpd and nginx work in child processes).
stop_proc() {
	local pid=$1 kids i p
	alive "$pid" || { wait "$pid" 2>/dev/null || true; return 0; }
	kids=$(tree_pids "$pid")
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	for p in $kids; do
		alive "$p" && kill -KILL "$p" 2>/dev/null
	done
	wait "$pid" 2>/dev/null || true
	local left=()
	for p in "${STARTED[@]}"; do [[ $p != "$pid" ]] && left+=("$p"); done
	STARTED=("${left[@]}")
}

cleanup() {
	local rc=$? i
	trap - EXIT INT TERM
	for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do stop_proc "${STARTED[i]}"; done
	if [[ -n $WORK && -d $WORK ]]; then
		if [[ ${BENCH_KEEP:-0} == 1 || $rc -ne 0 ]]; then
			log "scratch files kept in $WORK"
		else
			rm -rf "$WORK"
		fi
	fi
	exit "$rc"
}

# bench_init NAME: scratch directory, traps, file limit.
bench_init() {
	WORK=$(mktemp -d "/tmp/tether-$1.XXXXXX")
	mkdir -p "$WORK/bin" "$WORK/log"
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	# 10,000 client connections need as many descriptors in the proxy.
	ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
	if [[ $(nproc) -lt 2 ]]; then
		log "warning: one CPU only: client, backends and proxy share it"
		CLIENT_CPU=0 PROXY_CPU=0
	fi
}

# need_packages PKG...: install the Debian packages that are missing.
need_packages() {
	local missing=() p sudo=""
	for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
	[[ ${#missing[@]} -eq 0 ]] && return 0
	log "apt-get install ${missing[*]}"
	[[ $(id -u) -eq 0 ]] || sudo="sudo"
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq || die "apt-get update failed"
	$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
		die "apt-get install ${missing[*]} failed"
}

# build_go PKG...: build commands of this module into $WORK/bin, in one go
# build (in parallel); each binary is named after its directory.
build_go() {
	(cd "$ROOT" && go build -o "$WORK/bin/" "$@") || die "go build $* failed"
}

# port_free PORT: nothing listens on 127.0.0.1:PORT.
port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ticks PID...: CPU time (clock ticks) used so far by the processes and
# their descendants.
ticks() {
	local sum=0 p line f
	for p in $(for r in "$@"; do tree_pids "$r"; done); do
		line=$(cat "/proc/$p/stat" 2>/dev/null) || continue
		read -ra f <<<"${line##*) }"
		sum=$((sum + f[11] + f[12]))
	done
	echo "$sum"
}

# start_proc NAME CPU CMD...: start CMD pinned to CPU, output to
# $WORK/log/NAME.log; sets LAST_PID.
start_proc() {
	local name=$1 cpu=$2
	shift 2
	taskset -c "$cpu" "$@" >"$WORK/log/$name.log" 2>&1 &
	LAST_PID=$!
	STARTED+=("$LAST_PID")
}

# wait_http NAME PID URL [SECONDS]: poll URL until it answers 2xx, for up
# to SECONDS (default 15); fail with the process's log if it dies or never
# answers.
wait_http() {
	local name=$1 pid=$2 url=$3 limit=$((${4:-15} * 10)) i code
	for ((i = 0; i < limit; i++)); do
		alive "$pid" || { tail -n 20 "$WORK/log/$name.log" >&2; die "$name exited during start-up"; }
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" 2>/dev/null) || code=000
		[[ $code == 2* ]] && return 0
		sleep 0.1
	done
	tail -n 20 "$WORK/log/$name.log" >&2
	die "$name did not answer $url with 2xx within $((limit / 10)) s (last status $code)"
}

# start_backends: the three members n1..n3 on BACKEND_CPU (the client's
# core, or with --placement shared the proxy's).
start_backends() {
	local i
	for i in 0 1 2; do
		port_free "${BACKEND_PORTS[i]}" || die "port ${BACKEND_PORTS[i]} is in use; set BENCH_PORT_BASE"
		start_proc "backend-n$((i + 1))" "$BACKEND_CPU" env GOMAXPROCS=1 "$WORK/bin/backend" \
			--listen "127.0.0.1:${BACKEND_PORTS[i]}" --route "n$((i + 1))"
		BACKEND_PIDS[i]=$LAST_PID
		wait_http "backend-n$((i + 1))" "$LAST_PID" "http://127.0.0.1:${BACKEND_PORTS[i]}/"
	done
}

# write_tether_config FILE PORT [MANAGER_PORT] [ENGINE] [MAX_CONNS]: the
# Tether configuration over n1..n3, with the manager (token bench-token) if
# a port is given, the engine if one is (default: auto, the native engine),
# and a per-member limit with a 30 s queue if MAX_CONNS is given. With
# TLS_PORT set, a second balancer over the same members listens there with
# the certificate of $WORK/tls. LIMITS_EXTRA adds entries to its limits
# ("park_after: 100ms").
write_tether_config() {
	cat >"$1" <<-YAML
		listen: 127.0.0.1:$2
		limits: { idle_timeout: ${IDLE_TIMEOUT:-120}s${LIMITS_EXTRA:+, $LIMITS_EXTRA} }
		$([[ -n ${3:-} ]] && printf 'manager: { listen: "127.0.0.1:%s", token: bench-token }' "$3")
		$([[ -n ${4:-} ]] && printf 'engine: %s' "$4")
		balancers:
		  - name: bench
		    $([[ -n ${5:-} ]] && printf 'max_conns: %s\n    timeouts: { queue: 30s }' "$5")
		    members:
		      - { url: http://127.0.0.1:${BACKEND_PORTS[0]}, route: n1 }
		      - { url: http://127.0.0.1:${BACKEND_PORTS[1]}, route: n2 }
		      - { url: http://127.0.0.1:${BACKEND_PORTS[2]}, route: n3 }
	YAML
	[[ -n ${TLS_PORT:-} ]] || return 0
	cat >>"$1" <<-YAML
		  - name: bench-tls
		    listen: 127.0.0.1:$TLS_PORT
		    tls: { cert: $WORK/tls/cert.pem, key: $WORK/tls/key.pem }
		    members:
		      - { url: http://127.0.0.1:${BACKEND_PORTS[0]}, route: n1 }
		      - { url: http://127.0.0.1:${BACKEND_PORTS[1]}, route: n2 }
		      - { url: http://127.0.0.1:${BACKEND_PORTS[2]}, route: n3 }
	YAML
}

# set_proxy_cpus N: the proxy gets N cores, PROXY_CPU first.
set_proxy_cpus() {
	local n=$1 total i cpus=()
	total=$(nproc)
	((n >= 1 && n <= total)) || die "--proxy-cpus $n: this machine has $total cores"
	for ((i = 0; i < n; i++)); do cpus+=($(((PROXY_CPU + i) % total))); done
	PROXY_NCPU=$n
	PROXY_CPUS=$(
		IFS=,
		echo "${cpus[*]}"
	)
}

# write_bench_cert DIR: an ECDSA P-256 certificate for 127.0.0.1 (cert.pem,
# key.pem, and both in haproxy.pem), the same for every TLS target.
write_bench_cert() {
	mkdir -p "$1"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
		-addext subjectAltName=IP:127.0.0.1 -keyout "$1/key.pem" -out "$1/cert.pem" 2>/dev/null ||
		die "openssl could not make the benchmark certificate"
	cat "$1/cert.pem" "$1/key.pem" >"$1/haproxy.pem"
}

# write_wrk_script FILE: a wrk script that prints one machine-readable line.
write_wrk_script() {
	cat >"$1" <<-'LUA'
		done = function(summary, latency, requests)
		  local e = summary.errors
		  io.write(string.format(
		    "RESULT requests=%d duration_us=%d bytes=%d p50_us=%d p99_us=%d status=%d connect=%d read=%d write=%d timeout=%d\n",
		    summary.requests, summary.duration, summary.bytes,
		    latency:percentile(50), latency:percentile(99),
		    e.status, e.connect, e.read, e.write, e.timeout))
		end
	LUA
}

# run_burst CONNS BURSTS URL [COOKIE]: bench/burst's bursts of CONNS new
# connections (one request each), 300 ms apart, from the client core;
# prints its RESULT line, in run_wrk's form (its BURST line, the median
# burst's time, goes to stderr).
run_burst() {
	local out
	out=$(taskset -c "$CLIENT_CPU" "$WORK/bin/burst" --addr "${3#http://}" --conns "$1" --bursts "$2" \
		--gap 300ms --cookie "${4:-}" 2>&1) || { echo "$out" >&2; die "bench/burst $3 failed"; }
	grep '^RESULT ' <<<"$out" || { echo "$out" >&2; die "bench/burst printed no result for $3"; }
	grep '^BURST ' <<<"$out" >&2 || true
}

# run_wrk CONNS SECONDS URL [COOKIE] [HEADER]: wrk pinned to the client
# core; prints the RESULT line. HEADER is one more request header
# ("Connection: close": a new connection per request).
run_wrk() {
	local conns=$1 secs=$2 url=$3 cookie=${4:-} header=${5:-} out
	local args=(-t1 "-c$conns" "-d${secs}s" --timeout 10s -s "$WORK/report.lua")
	[[ -n $cookie ]] && args+=(-H "Cookie: $cookie")
	[[ -n $header ]] && args+=(-H "$header")
	out=$(taskset -c "$CLIENT_CPU" wrk "${args[@]}" "$url" 2>&1) || { echo "$out" >&2; die "wrk $url failed"; }
	grep '^RESULT ' <<<"$out" || { echo "$out" >&2; die "wrk printed no result for $url"; }
}
