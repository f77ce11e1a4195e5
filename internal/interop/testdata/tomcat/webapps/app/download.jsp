<%@ page session="false" contentType="application/octet-stream" trimDirectiveWhitespaces="true" %><%
// size bytes of the pattern i % 251, streamed through the output stream with a flush every MiB.
long size = Long.parseLong(request.getParameter("size"));
java.io.OutputStream os = response.getOutputStream();
byte[] buf = new byte[65536];
long off = 0;
while (off < size) {
  int k = (int) Math.min(buf.length, size - off);
  for (int i = 0; i < k; i++) buf[i] = (byte) ((off + i) % 251);
  os.write(buf, 0, k);
  off += k;
  if (off % (1 << 20) == 0) os.flush();
}
os.flush();
%>
