package route

import "strings"

// Redacted replaces a session id in a redacted request target.
const Redacted = "REDACTED"

// RedactTarget returns target, a request target ("/cart;jsessionid=x.n1?a=1"),
// with the value of every ";name=value" path parameter and "name=value"
// query parameter whose name is one of names, compared without regard to
// ASCII case, replaced by Redacted: the form of a target that may be
// logged without a live session id. It returns target itself, without
// allocating, when there is nothing to redact. A fragment ("#…") is part
// of the query for this purpose.
func RedactTarget(target string, names []string) string {
	var b strings.Builder // written from the first redaction on
	done := 0             // target[:done] is in b
	redact := func(from, to int) {
		if b.Len() == 0 {
			b.Grow(len(target))
		}
		b.WriteString(target[done:from])
		b.WriteString(Redacted)
		done = to
	}
	query := strings.IndexByte(target, '?')
	path := target
	if query >= 0 {
		path = target[:query]
	}
	for i := 0; i < len(path); i++ {
		if path[i] != ';' {
			continue
		}
		end := i + 1
		for end < len(path) && path[end] != '/' && path[end] != ';' {
			end++
		}
		if v := valueOf(path[i+1:end], names); v >= 0 {
			redact(i+1+v, end)
		}
		i = end - 1
	}
	if query >= 0 {
		for i := query + 1; i <= len(target); {
			end := strings.IndexByte(target[i:], '&')
			if end < 0 {
				end = len(target)
			} else {
				end += i
			}
			if v := valueOf(target[i:end], names); v >= 0 {
				redact(i+v, end)
			}
			i = end + 1
		}
	}
	if done == 0 {
		return target
	}
	b.WriteString(target[done:])
	return b.String()
}

// valueOf returns the offset of the value in param ("name=value") if its
// name is one of names (without regard to ASCII case), else -1.
func valueOf(param string, names []string) int {
	eq := strings.IndexByte(param, '=')
	if eq <= 0 {
		return -1
	}
	for _, n := range names {
		if strings.EqualFold(param[:eq], n) {
			return eq + 1
		}
	}
	return -1
}
