# shellcheck shell=bash
# A kernel nginx in the peer namespace for tests whose clients run on the stack.
#
#   source tests/interop/lib/peer-nginx.sh
#   peer_nginx_start DIR PORT     # serves DIR/www on $PEER_ADDR:PORT, temp files in DIR/tmp
#
# DIR/www must hold the files to serve; they are made readable for nginx's unprivileged
# workers. nginx runs in the foreground under netns_spawn (stopped by netns_cleanup); the
# function returns once it answers.
peer_nginx_start() {
    local dir="$1" port="$2"
    mkdir -p "$dir/www" "$dir/tmp"
    # nginx's workers run as an unprivileged user: let them reach the files.
    chmod 755 "$dir" "$dir/www"
    chmod 755 "$(dirname "$dir")" 2>/dev/null || true
    find "$dir/www" -type f -exec chmod 644 {} +
    cat >"$dir/nginx.conf" <<CONF
daemon off;
master_process on;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/tmp;
    proxy_temp_path $dir/tmp;
    fastcgi_temp_path $dir/tmp;
    uwsgi_temp_path $dir/tmp;
    scgi_temp_path $dir/tmp;
    keepalive_requests 100000;
    server { listen $PEER_ADDR:$port backlog=4096; root $dir/www; }
}
CONF
    netns_spawn nginx -c "$dir/nginx.conf" -p "$dir"
    netns_wait_for 50 netns_exec curl -s -o /dev/null "http://$PEER_ADDR:$port/"
}
