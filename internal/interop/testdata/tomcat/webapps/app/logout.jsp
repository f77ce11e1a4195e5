<%@ page session="false" contentType="text/plain; charset=UTF-8" %><%
// A well-behaved logout: invalidate, expire the cookie with its Path, create nothing.
jakarta.servlet.http.HttpSession s = request.getSession(false);
if (s != null) s.invalidate();
jakarta.servlet.http.Cookie c = new jakarta.servlet.http.Cookie("JSESSIONID", "");
c.setPath(request.getContextPath());
c.setMaxAge(0);
response.addCookie(c);
out.print("bye");
%>
