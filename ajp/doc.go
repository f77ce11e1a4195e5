// Package ajp speaks AJP13, the protocol Apache httpd's mod_jk and
// mod_proxy_ajp speak to their workers, both ways.
//
// Its Server serves HTTP handlers over AJP13, so that a Go app can stand
// where a Tomcat with an AJP connector stands: a worker of a mod_jk load
// balancer (the worker name being the route of its session ids), or an
// ajp:// member of mod_proxy_balancer.
//
// Its Client is the web server's side, as mod_jk is: it sends HTTP
// requests to an AJP connector (Tomcat's, or this package's Server) over a
// pool of kept connections, with the client's address, port and TLS state
// as AJP attributes (Forward), the secret and the route; request bodies go
// in chunks as the container asks for them, responses stream back, and a
// connection idle for a while is checked with CPing/CPong before reuse.
// Tether's balancer uses it for ajp:// members.
//
//	c, err := ajp.NewClient(ajp.ClientOptions{Addr: "10.0.0.11:8009", Secret: secret, Route: "node1"})
//	resp, err := c.Do(req, ajp.ForwardOf(incoming))
//
// The rest of this comment is about the Server.
//
//	srv, err := ajp.NewServer(handler, ajp.Options{Secret: secret})
//	if err != nil { … }
//	ln, err := net.Listen("tcp", "127.0.0.1:8009")
//	…
//	err = srv.Serve(ln) // ErrServerClosed after Shutdown
//
// # The protocol
//
// The web server opens TCP connections to the worker and keeps them; each
// carries one request at a time. For a request it sends a Forward Request
// packet (method, protocol, URI, client address, server name and port,
// whether the client used TLS, the headers, and attributes such as the
// query string, the route and the secret), then, if the request has a
// Content-Length, a first body chunk. The worker answers with Send Headers,
// any number of Send Body Chunk packets, and End Response, whose reuse flag
// says whether the connection may carry another request. When the handler
// reads more of the body, the worker asks for each further chunk (Get Body
// Chunk); a chunked upload is read that way until an empty chunk ends it.
// A CPing packet, sent by mod_jk to probe a connection (ping_mode), gets a
// CPong; the Shutdown packet is ignored.
//
// # Requests
//
// The handler gets an ordinary *http.Request:
//   - RemoteAddr is the client's address as the web server saw it, with the
//     port mod_jk and mod_proxy_ajp pass in the AJP_REMOTE_PORT attribute
//     ("0" if absent);
//   - Host is the Host header, or else the server name and port;
//   - RequestURI is the URI with the query string, URL its parse;
//   - TLS is non-nil when the client reached the web server over HTTPS
//     (is_ssl). It is a marker, so that code asking "r.TLS != nil" (secure
//     cookies, https redirects) behaves as behind a TLS-terminating proxy it
//     trusts: only HandshakeComplete and ServerName are set; the cipher,
//     client certificates and the rest are in RequestInfo, as strings;
//   - the context ends when the web server closes the connection (noticed
//     once the body has been read to its end, as with net/http), and when
//     the handler returns;
//   - RequestInfo(r) has the rest: remote host, server name and port, SSL
//     details, authenticated user, route and request attributes.
//
// The ResponseWriter buffers up to one packet of body: a response that
// fits gets a Content-Length (and, without a Content-Type, a sniffed one),
// a larger one is streamed in chunks of at most PacketSize-8 bytes. It
// implements http.Flusher (and FlushError for http.ResponseController):
// Flush sends what is buffered and an empty chunk, which asks mod_jk and
// mod_proxy_ajp to flush to the client. It has no Hijack (AJP13 cannot
// switch protocols), sends no 1xx responses and no trailers.
//
// # Security
//
// A request over AJP says who the client is, whether it used TLS and who
// the web server authenticated; whoever can open a connection to the
// port can claim anything. Ghostcat (CVE-2020-1938) used exactly that
// against Tomcat's connector, enabled on all interfaces without a secret.
// So here:
//   - a Secret is required unless Options.AllowNoSecret says otherwise; a
//     request without the matching secret gets 403, is logged, and its
//     connection is closed;
//   - DefaultAddr and the examples bind to loopback;
//   - request attributes and the route are exposed as data only, never
//     acted upon;
//   - packets, headers, attributes and bodies are bounded (Options), reads
//     and idle connections time out, and bad input closes the connection
//     with a logged error.
//
// # Differences from Tomcat's AJP connector
//
// The secret is required by default, and a request without it is refused
// with 403 and a closed connection, as in Tomcat 9.0.31 and later; here the
// refusal is also logged. Request attributes Tomcat does not know are
// refused by it unless allowedRequestAttributesPattern matches them; here
// they are handed to the app as data, since nothing in this package gives
// them a meaning. An attribute code neither knows is skipped by Tomcat and
// refused here. jvm_route is ignored by Tomcat and only reported here; the
// user the web server authenticated is only reported (Tomcat uses it with
// tomcatAuthentication="false"). The Shutdown packet is ignored by both.
package ajp
