<%@ page session="false" contentType="text/plain; charset=UTF-8" trimDirectiveWhitespaces="true" %><%
// What the servlet API reports about the request, and the body's length and SHA-256.
java.security.MessageDigest md = java.security.MessageDigest.getInstance("SHA-256");
long n = 0;
java.io.InputStream in = request.getInputStream();
byte[] buf = new byte[65536];
for (int k; (k = in.read(buf)) > 0; ) { md.update(buf, 0, k); n += k; }
StringBuilder hex = new StringBuilder();
for (byte b : md.digest()) hex.append(String.format("%02x", b));
out.print("remoteAddr=" + request.getRemoteAddr() + "\n");
out.print("remotePort=" + request.getRemotePort() + "\n");
out.print("secure=" + request.isSecure() + "\n");
out.print("scheme=" + request.getScheme() + "\n");
out.print("serverName=" + request.getServerName() + "\n");
out.print("serverPort=" + request.getServerPort() + "\n");
out.print("cipher=" + request.getAttribute("jakarta.servlet.request.cipher_suite") + "\n");
out.print("keySize=" + request.getAttribute("jakarta.servlet.request.key_size") + "\n");
out.print("query=" + request.getQueryString() + "\n");
out.print("redirect=" + response.encodeRedirectURL(request.getRequestURL().toString()) + "\n");
out.print("bodyLength=" + n + "\n");
out.print("bodySHA256=" + hex + "\n");
%>
