<%@ page session="false" contentType="text/plain; charset=UTF-8" %><%
// A counter kept in the session: it survives only on the node that holds it.
jakarta.servlet.http.HttpSession s = request.getSession(true);
Integer n = (Integer) s.getAttribute("n");
n = (n == null) ? 1 : n + 1;
s.setAttribute("n", n);
out.print(s.getId() + " " + n);
%>
