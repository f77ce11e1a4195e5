package route

import "strings"

// This file finds a session id in the three places a request may carry it:
// a cookie, a ";name=value" path parameter and a "name=value" query
// parameter. The functions return substrings of their input and never
// allocate.

// Cookie finds the first cookie called name in header, the value of a Cookie
// request header ("a=1; JSESSIONID=x.n1"). It returns the value with any
// surrounding double quotes removed, and rest, the part of header after that
// cookie, so that a caller can look for a second cookie of the same name
// (browsers send one per matching Path). ok is false when there is none.
func Cookie(header, name string) (value, rest string, ok bool) {
	if name == "" {
		return "", "", false
	}
	for len(header) > 0 {
		var part string
		if i := strings.IndexByte(header, ';'); i >= 0 {
			part, header = header[:i], header[i+1:]
		} else {
			part, header = header, ""
		}
		part = trimSpace(part)
		if len(part) <= len(name) || part[:len(name)] != name {
			continue
		}
		after := trimLeftSpace(part[len(name):])
		if len(after) == 0 || after[0] != '=' {
			continue
		}
		v := trimSpace(after[1:])
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		return v, header, true
	}
	return "", "", false
}

// PathParam finds ";name=value" in a URL path, as servlet containers append
// ";jsessionid=…" for clients without cookies. The value ends at the next
// '/', ';', '?' or '#'. The match is case-sensitive.
func PathParam(path, name string) (value string, ok bool) {
	if name == "" {
		return "", false
	}
	for i := 0; i < len(path); i++ {
		if path[i] != ';' {
			continue
		}
		p := path[i+1:]
		if len(p) <= len(name) || p[:len(name)] != name || p[len(name)] != '=' {
			continue
		}
		v := p[len(name)+1:]
		for j := 0; j < len(v); j++ {
			switch v[j] {
			case '/', ';', '?', '#':
				return v[:j], true
			}
		}
		return v, true
	}
	return "", false
}

// QueryParam finds "name=value" in a raw query string ("a=1&jsessionid=x.n1").
// The value is returned as it stands in the URL, without unescaping: session
// ids are URL-safe, and a value that needed unescaping is not one.
func QueryParam(rawQuery, name string) (value string, ok bool) {
	if name == "" {
		return "", false
	}
	for len(rawQuery) > 0 {
		var part string
		if i := strings.IndexByte(rawQuery, '&'); i >= 0 {
			part, rawQuery = rawQuery[:i], rawQuery[i+1:]
		} else {
			part, rawQuery = rawQuery, ""
		}
		if len(part) > len(name) && part[:len(name)] == name && part[len(name)] == '=' {
			return part[len(name)+1:], true
		}
	}
	return "", false
}

func trimSpace(s string) string {
	s = trimLeftSpace(s)
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

func trimLeftSpace(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	return s
}
