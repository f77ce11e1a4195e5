# shellcheck shell=bash disable=SC2034 # variables used by the scripts that source it
# bench/peers.sh: the targets of bench/compare and how to start them: Tether,
# HAProxy, nginx and Apache httpd with equivalent sticky configurations over
# the backends n1..n3 of lib.sh, and "direct" (one backend alone). Sourced
# after lib.sh, not run.
#
# Equivalence: every proxy keeps client and member connections alive,
# routes a request whose JSESSIONID ends in ".nX" (the text after the first
# dot) to member nX, spreads requests without one round robin, adds
# X-Forwarded-For, logs no requests, and runs as one process (or one worker
# process) on one core.

PORT_tether=$((PORT_BASE + 1)) PORT_haproxy=$((PORT_BASE + 2))
PORT_nginx=$((PORT_BASE + 3)) PORT_httpd=$((PORT_BASE + 4)) PORT_direct=$DIRECT_PORT
# Design experiments (bench/protoproxy, backend --nethttp); not in the default run.
PORT_proto_nethttp=$((PORT_BASE + 5)) PORT_proto_raw=$((PORT_BASE + 6)) PORT_direct_nethttp=$((PORT_BASE + 7))
# Tether with its net/http engine (engine: nethttp) instead of the native one.
PORT_tether_nethttp=$((PORT_BASE + 10))
# Tether with max_conns: 64 per member (a FIFO queue in the balancer).
PORT_tether_maxconns=$((PORT_BASE + 9))
# Balancer cookies for applications without routes: Tether's sticky.mode:
# insert (a signed cookie) and HAProxy's cookie SERVERID insert.
PORT_tether_insert=$((PORT_BASE + 15)) PORT_haproxy_insert=$((PORT_BASE + 16))
# Tether with GOMAXPROCS=1 on all the proxy's cores (with --proxy-cpus 2: one
# P whose thread the kernel may run on either core), plaintext and TLS.
PORT_tether_1p=$((PORT_BASE + 17))
# Tether with the environment of BENCH_EXP_ENV added (default GOGC=400), to
# compare a runtime setting with the default in the same run, e.g.
# BENCH_EXP_ENV="GOGC=off GODEBUG=gctrace=1"; plaintext and TLS. With
# BENCH_EXP_LIMITS its configuration's limits get those entries too
# (BENCH_EXP_LIMITS="park_after: 100ms"). With
# BENCH_EXP_GO=/path/to/go it is built by that Go toolchain instead (a
# modified runtime next to the stock one).
PORT_tether_exp=$((PORT_BASE + 18))
PEERS="direct tether haproxy nginx httpd"
# TLS listeners (modes tls and tls-handshake, and the TLS memory figure):
# Tether, HAProxy and nginx, each with the ECDSA P-256 certificate of
# write_bench_cert, TLS 1.2 and 1.3, session tickets on, and the same TLS
# 1.3 cipher (TLS_AES_128_GCM_SHA256, the one Go's server picks on CPUs
# with AES instructions; OpenSSL's servers would pick AES-256). Clients
# that offer no ALPN (wrk) get HTTP/1.1 from all three.
TLS_TARGETS="tether haproxy nginx tether-1p tether-exp"
TLS_PORT_tether=$((PORT_BASE + 21)) TLS_PORT_haproxy=$((PORT_BASE + 22)) TLS_PORT_nginx=$((PORT_BASE + 23))
TLS_PORT_tether_1p=$((PORT_BASE + 24)) TLS_PORT_tether_exp=$((PORT_BASE + 25))
# The keep-alive timeout of idle client connections, the same for all
# (Tether's limits.idle_timeout, HAProxy's timeout http-keep-alive and
# timeout client, which also closes idle connections, nginx's
# keepalive_timeout, httpd's KeepAliveTimeout); bench/compare raises it when
# --idle-settle would outlast it.
IDLE_TIMEOUT=${IDLE_TIMEOUT:-120}
# BENCH_GOENV adds environment to the Go targets (Tether, protoproxy and the
# direct backends), e.g. BENCH_GOENV="GOGC=400" to try a GC setting.
GOENV=${BENCH_GOENV:-}
EXPENV=${BENCH_EXP_ENV:-GOGC=400}
EXPGO=${BENCH_EXP_GO:-}
EXPLIMITS=${BENCH_EXP_LIMITS:-}
EXPERIMENTS="tether-nethttp tether-maxconns tether-insert tether-1p tether-exp haproxy-insert direct-nethttp proto-nethttp proto-raw"
P1=${BACKEND_PORTS[0]} P2=${BACKEND_PORTS[1]} P3=${BACKEND_PORTS[2]}

# build_exp: tether-exp's binary, $WORK/bin/tether-exp: with BENCH_EXP_GO's
# toolchain, else a copy of $WORK/bin/tether.
build_exp() {
	if [[ -z $EXPGO ]]; then
		cp "$WORK/bin/tether" "$WORK/bin/tether-exp"
		return
	fi
	log "building tether-exp with $EXPGO ($("$EXPGO" version))"
	(cd "$ROOT" && "$EXPGO" build -o "$WORK/bin/tether-exp" ./cmd/tether) || die "$EXPGO build ./cmd/tether failed"
}

# write_peer_configs: every target's configuration into $WORK.
write_peer_configs() {
	write_bench_cert "$WORK/tls"
	TLS_PORT=$TLS_PORT_tether write_tether_config "$WORK/tether.yaml" "$PORT_tether"
	TLS_PORT=$TLS_PORT_tether_1p write_tether_config "$WORK/tether-1p.yaml" "$PORT_tether_1p"
	LIMITS_EXTRA=$EXPLIMITS TLS_PORT=$TLS_PORT_tether_exp write_tether_config "$WORK/tether-exp.yaml" "$PORT_tether_exp"
	write_tether_config "$WORK/tether-nethttp.yaml" "$PORT_tether_nethttp" "" nethttp
	write_tether_config "$WORK/tether-maxconns.yaml" "$PORT_tether_maxconns" "" "" 64
	write_tether_insert_config
	write_haproxy_config
	write_haproxy_config insert
	write_nginx_config
	write_httpd_config
}

# write_tether_insert_config: Tether with sticky.mode: insert, its key in
# a file of the scratch directory.
write_tether_insert_config() {
	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/cookie.key"
	write_tether_config "$WORK/tether-insert.yaml" "$PORT_tether_insert"
	sed -i "s|^  - name: bench|  - name: bench\n    sticky: { mode: insert, cookie: { key_file: $WORK/cookie.key, no_cache: true } }|" "$WORK/tether-insert.yaml"
}

# write_haproxy_config [insert]: one thread; use-server on the cookie's
# route, or (insert) HAProxy's own cookie SERVERID naming the server.
# File descriptors: 10,000 idle clients plus the member connections. When
# the hard limit is below what HAProxy wants for maxconn (two per
# connection), "no strict-limits" lets it start with what there is.
write_haproxy_config() {
	local file=$WORK/haproxy.cfg port=$PORT_haproxy sticky
	sticky="	use-server n1 if { req.cook(JSESSIONID),field(2,.) -m str n1 }
	use-server n2 if { req.cook(JSESSIONID),field(2,.) -m str n2 }
	use-server n3 if { req.cook(JSESSIONID),field(2,.) -m str n3 }
	server n1 127.0.0.1:$P1
	server n2 127.0.0.1:$P2
	server n3 127.0.0.1:$P3"
	if [[ ${1:-} == insert ]]; then
		file=$WORK/haproxy-insert.cfg port=$PORT_haproxy_insert
		sticky="	cookie SERVERID insert indirect nocache httponly
	server n1 127.0.0.1:$P1 cookie n1
	server n2 127.0.0.1:$P2 cookie n2
	server n3 127.0.0.1:$P3 cookie n3"
	fi
	local tls=""
	[[ ${1:-} == insert ]] || tls="frontend fe-tls
	bind 127.0.0.1:$TLS_PORT_haproxy ssl crt $WORK/tls/haproxy.pem ssl-min-ver TLSv1.2
	default_backend members"
	cat >"$file" <<EOF
global
	nbthread $PROXY_NCPU
	maxconn 12000
	no strict-limits
	ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256
defaults
	mode http
	option http-keep-alive
	option forwardfor
	timeout connect 2s
	timeout client ${IDLE_TIMEOUT}s
	timeout server 30s
	timeout http-keep-alive ${IDLE_TIMEOUT}s
	maxconn 12000
frontend fe
	bind 127.0.0.1:$port
	default_backend members
$tls
backend members
	balance roundrobin
	# the forwarding fields Tether sends by default (2.6 has no option forwarded)
	http-request set-header Forwarded "for=%[src];host=\"%[req.hdr(host)]\";proto=%[ssl_fc,iif(https,http)]"
	http-request set-header X-Forwarded-Host %[req.hdr(host)]
	http-request set-header X-Forwarded-Proto %[ssl_fc,iif(https,http)]
$sticky
EOF
}

# nginx_upstream NAME PORT...: an upstream keeping idle connections.
nginx_upstream() {
	local name=$1 p
	shift
	echo "	upstream $name {"
	for p in "$@"; do echo "		server 127.0.0.1:$p;"; done
	echo "		keepalive 64;"
	echo "		keepalive_requests 1000000;"
	echo "	}"
}

# write_nginx_config: one worker process; a map on the cookie's route picks
# a one-member upstream, the default is a round-robin upstream.
write_nginx_config() {
	local nofile
	nofile=$(ulimit -n)
	# the same proxying on both listeners, plaintext and TLS
	local location
	location=$(
		cat <<'EOF'
		location / {
			proxy_pass http://$members;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host $host;
			proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
			proxy_set_header X-Forwarded-Host $host;
			proxy_set_header X-Forwarded-Proto $scheme;
			proxy_set_header Forwarded "for=$remote_addr;host=\"$http_host\";proto=$scheme";
		}
EOF
	)
	mkdir -p "$WORK/nginx/tmp"
	cat >"$WORK/nginx/nginx.conf" <<EOF
daemon off;
worker_processes $PROXY_NCPU;
worker_rlimit_nofile $nofile;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events {
	worker_connections $((nofile - 100));
}
http {
	access_log off;
	client_body_temp_path $WORK/nginx/tmp/body;
	proxy_temp_path $WORK/nginx/tmp/proxy;
	fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
	uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
	scgi_temp_path $WORK/nginx/tmp/scgi;
	keepalive_timeout ${IDLE_TIMEOUT}s;
	keepalive_requests 1000000;
	# The route is the text after the first dot of JSESSIONID.
	map \$cookie_JSESSIONID \$members {
		"~^[^.]*\\.n1\$" n1;
		"~^[^.]*\\.n2\$" n2;
		"~^[^.]*\\.n3\$" n3;
		default roundrobin;
	}
$(nginx_upstream n1 "$P1")
$(nginx_upstream n2 "$P2")
$(nginx_upstream n3 "$P3")
$(nginx_upstream roundrobin "$P1" "$P2" "$P3")
	server {
		listen 127.0.0.1:$PORT_nginx backlog=4096;
$location
	}
	server {
		listen 127.0.0.1:$TLS_PORT_nginx ssl backlog=4096;
		ssl_certificate $WORK/tls/cert.pem;
		ssl_certificate_key $WORK/tls/key.pem;
		ssl_protocols TLSv1.2 TLSv1.3;
		ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256;
		ssl_prefer_server_ciphers on;
		ssl_session_tickets on;
$location
	}
}
EOF
}

# write_httpd_config: mod_proxy_balancer, stickysession=JSESSIONID|jsessionid,
# route= per member, event MPM; its own pid, log and runtime paths.
write_httpd_config() {
	local user="" mods=/usr/lib/apache2/modules
	mkdir -p "$WORK/httpd"
	if [[ $(id -u) -eq 0 ]]; then # httpd refuses to serve as root
		user="User www-data"$'\n'"Group www-data"
		id www-data >/dev/null 2>&1 || user="User nobody"$'\n'"Group nogroup"
	fi
	cat >"$WORK/httpd/httpd.conf" <<EOF
ServerRoot $WORK/httpd
ServerName 127.0.0.1
Listen 127.0.0.1:$PORT_httpd
PidFile $WORK/httpd/httpd.pid
DefaultRuntimeDir $WORK/httpd
ErrorLog $WORK/httpd/error.log
LogLevel warn
$user
LoadModule mpm_event_module $mods/mod_mpm_event.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule slotmem_shm_module $mods/mod_slotmem_shm.so
LoadModule proxy_module $mods/mod_proxy.so
LoadModule proxy_http_module $mods/mod_proxy_http.so
LoadModule proxy_balancer_module $mods/mod_proxy_balancer.so
LoadModule lbmethod_byrequests_module $mods/mod_lbmethod_byrequests.so
# One process. A thread is httpd's unit of concurrency (one per request in
# flight, held during the member's answer), not of parallelism: all share
# the one core. With 64 threads it closes keep-alive connections at 1,000
# clients (wrk read errors), so it gets 1,024. Idle keep-alive connections
# wait in the event loop without a thread, up to 1,024 + 16 x idle threads.
StartServers 1
ServerLimit 1
ThreadLimit 1024
ThreadsPerChild 1024
MaxRequestWorkers 1024
MinSpareThreads 1
MaxSpareThreads 1024
AsyncRequestWorkerFactor 16
MaxConnectionsPerChild 0
ListenBacklog 4096
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout $IDLE_TIMEOUT
Timeout 30
ProxyRequests Off
<Proxy "balancer://members">
	BalancerMember "http://127.0.0.1:$P1" route=n1
	BalancerMember "http://127.0.0.1:$P2" route=n2
	BalancerMember "http://127.0.0.1:$P3" route=n3
	ProxySet stickysession=JSESSIONID|jsessionid lbmethod=byrequests
</Proxy>
ProxyPass "/" "balancer://members/"
EOF
}

# start_target NAME: start it pinned to the proxy's cores; sets TARGET_PID,
# TARGET_URL and TARGET_TLS_URL ("" for a target without TLS listener).
start_target() {
	local name=$1 port members
	port=PORT_${name//-/_}
	port=${!port}
	port_free "$port" || die "port $port is in use; set BENCH_PORT_BASE"
	members="n1=127.0.0.1:$P1,n2=127.0.0.1:$P2,n3=127.0.0.1:$P3"
	# shellcheck disable=SC2086 # GOENV is a list of words
	case $name in
	direct) start_proc direct "$PROXY_CPU" env GOMAXPROCS=1 $GOENV "$WORK/bin/backend" --listen "127.0.0.1:$port" --route n2 ;;
	direct-nethttp) start_proc "$name" "$PROXY_CPU" env GOMAXPROCS=1 $GOENV "$WORK/bin/backend" --nethttp --listen "127.0.0.1:$port" --route n2 ;;
	proto-*) start_proc "$name" "$PROXY_CPU" env GOMAXPROCS=1 $GOENV "$WORK/bin/protoproxy" --engine "${name#proto-}" --listen "127.0.0.1:$port" --members "$members" ;;
	tether | tether-nethttp | tether-maxconns | tether-insert) start_proc "$name" "$PROXY_CPUS" env GOMAXPROCS="$PROXY_NCPU" $GOENV "$WORK/bin/tether" serve --config "$WORK/$name.yaml" ;;
	tether-1p) start_proc "$name" "$PROXY_CPUS" env GOMAXPROCS=1 $GOENV "$WORK/bin/tether" serve --config "$WORK/$name.yaml" ;;
	tether-exp) start_proc "$name" "$PROXY_CPUS" env GOMAXPROCS="$PROXY_NCPU" $GOENV $EXPENV "$WORK/bin/tether-exp" serve --config "$WORK/$name.yaml" ;;
	haproxy) start_proc haproxy "$PROXY_CPUS" haproxy -db -f "$WORK/haproxy.cfg" ;;
	haproxy-insert) start_proc haproxy-insert "$PROXY_CPUS" haproxy -db -f "$WORK/haproxy-insert.cfg" ;;
	nginx) start_proc nginx "$PROXY_CPUS" nginx -p "$WORK/nginx" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" ;;
	httpd) start_proc httpd "$PROXY_CPU" apache2 -d "$WORK/httpd" -f "$WORK/httpd/httpd.conf" -DFOREGROUND ;;
	esac
	TARGET_PID=$LAST_PID
	TARGET_URL="http://127.0.0.1:$port"
	wait_http "$name" "$TARGET_PID" "$TARGET_URL/"
	TARGET_TLS_URL=""
	if [[ " $TLS_TARGETS " == *" $name "* ]]; then
		port=TLS_PORT_${name//-/_}
		TARGET_TLS_URL="https://127.0.0.1:${!port}"
	fi
	TARGET_COOKIE=$STICKY_COOKIE
	case $name in
	tether-insert) TARGET_COOKIE="$STICKY_COOKIE; TETHERID=$(insert_cookie "$name" "$TARGET_URL" TETHERID)" ;;
	haproxy-insert) TARGET_COOKIE="$STICKY_COOKIE; SERVERID=$(insert_cookie "$name" "$TARGET_URL" SERVERID)" ;;
	esac
}

# insert_cookie NAME URL COOKIE: the value of the balancer's cookie COOKIE
# set on a new session that reached n2.
insert_cookie() {
	local name=$1 url=$2 cookie=$3 i hdr
	for ((i = 0; i < 12; i++)); do
		hdr=$(curl -sf --max-time 5 -D - -o "$WORK/body" "$url/") || die "$name: new-session request failed"
		[[ $(<"$WORK/body") == "node n2" ]] || continue
		hdr=$(grep -i "^Set-Cookie: $cookie=" <<<"$hdr" | head -1 | tr -d '\r') || die "$name: no $cookie cookie on a new session"
		hdr=${hdr#*=}
		echo "${hdr%%;*}"
		return
	done
	die "$name: 12 new sessions never reached n2"
}

# verify NAME URL: sticky requests all reach n2, new sessions reach every
# member and get that member's cookie, /big is 64 KiB.
verify() {
	local name=$1 url=$2 i body
	# New sessions first: httpd's byrequests counts sticky requests too, and
	# would then send the next new sessions elsewhere.
	[[ $name == direct* ]] || verify_new "$name" "$url"
	for ((i = 0; i < 10; i++)); do
		body=$(curl -sf --max-time 5 -H "Cookie: $TARGET_COOKIE" "$url/") || die "$name: sticky request failed"
		[[ $body == "node n2" ]] || die "$name is not sticky: a request for n2 reached '$body'"
	done
	body=$(curl -sf --max-time 5 -H "Cookie: $TARGET_COOKIE" -o /dev/null -w '%{size_download}' "$url/big") ||
		die "$name: /big failed"
	[[ $body == 65536 ]] || die "$name: /big returned $body bytes, want 65536"
}

# verify_tls NAME URL: over TLS (HTTP/1.1, no ALPN as wrk), sticky
# requests reach n2.
verify_tls() {
	local name=$1 url=$2 i out
	for ((i = 0; i < 4; i++)); do
		out=$(curl -sfk --no-alpn --max-time 5 -H "Cookie: $TARGET_COOKIE" -o "$WORK/body" -w '%{http_version}' "$url/") ||
			die "$name: TLS request to $url failed"
		out="$(<"$WORK/body") $out"
		[[ $out == "node n2 1.1" ]] || die "$name over TLS: '$out', want 'node n2' over HTTP/1.1"
	done
}

# verify_new NAME URL: six requests without a cookie reach every member and
# each gets a new session naming the member that answered.
verify_new() {
	local name=$1 url=$2 i body hdr seen=""
	for ((i = 0; i < 6; i++)); do
		hdr=$(curl -sf --max-time 5 -D - -o "$WORK/body" "$url/") || die "$name: new-session request failed"
		body=$(<"$WORK/body")
		[[ $body == node\ n[123] ]] || die "$name: unexpected body '$body'"
		grep -qi "^Set-Cookie: JSESSIONID=[0-9a-f]*\.${body#node }; Path=/" <<<"$hdr" ||
			die "$name: the new session's cookie does not name ${body#node }: $hdr"
		seen+=" ${body#node }"
	done
	for i in n1 n2 n3; do
		[[ $seen == *"$i"* ]] || die "$name: 6 new sessions never reached $i (reached:$seen)"
	done
}
