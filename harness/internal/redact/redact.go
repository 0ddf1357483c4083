// Package redact is the harness's one rule for credentials in text it
// writes out (logs, errors, artifacts): the user information of a URL
// (scheme://user:pass@host), the form proxy settings carry them in, which
// kind hands every node's environment, and that of a proxy setting written
// without a scheme (HTTPS_PROXY=user:pass@host, which Go's proxy parsing
// accepts).
package redact

import "regexp"

// Redacted replaces a value that must not be written out.
const Redacted = "<redacted>"

var (
	// urlScheme ends where a URL's user information would begin.
	urlScheme = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://`)
	// proxyAssignment ends where the value of a NAME_PROXY= assignment
	// begins, after its opening quote and scheme if it has them.
	proxyAssignment = regexp.MustCompile(`(?i)[a-z0-9_]*_proxy=["'` + "`" + `]?(?:[a-z][a-z0-9+.-]*://)?`)
)

// URLCredentials returns b with the user information of every URL in it,
// and of every *_PROXY=value assignment, replaced by Redacted.
func URLCredentials(b []byte) []byte {
	// A proxy value's user information ends at its last '@' even past a
	// '/', which a URL's would not: a password may hold one.
	b = redactUserinfo(b, proxyAssignment, false)
	return redactUserinfo(b, urlScheme, true)
}

// redactUserinfo replaces, after every match of start, the text up to the
// last '@' before whitespace, the quote the text was opened with, the end
// of b, or with stopAtSlash a '/': passwords may hold '@' and quotes, so
// the last '@' is where the host begins.
func redactUserinfo(b []byte, start *regexp.Regexp, stopAtSlash bool) []byte {
	var out []byte
	last := 0
	for _, m := range start.FindAllIndex(b, -1) {
		from := m[1]
		if m[0] < last {
			continue // inside user information already redacted
		}
		at := lastAt(b, from, openingQuote(b, from), stopAtSlash)
		if at <= from {
			continue
		}
		out = append(append(out, b[last:from]...), Redacted...)
		last = at
	}
	if out == nil {
		return b
	}
	return append(out, b[last:]...)
}

// openingQuote is the quote nearest before i in the same whitespace-
// separated word (JSON's, a shell's, Go's %q), 0 when there is none.
func openingQuote(b []byte, i int) byte {
	for i--; i >= 0 && !isSpace(b[i]); i-- {
		if b[i] == '"' || b[i] == '\'' || b[i] == '`' {
			return b[i]
		}
	}
	return 0
}

// lastAt is the index of the last '@' from b[from] on before whitespace,
// an unescaped quote, the end of b or (with stopAtSlash) a '/'; -1 if none.
func lastAt(b []byte, from int, quote byte, stopAtSlash bool) int {
	at := -1
	for i := from; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '@':
			at = i
		case isSpace(c), stopAtSlash && c == '/', quote != 0 && c == quote && b[i-1] != '\\':
			return at
		}
	}
	return at
}

func isSpace(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '\v', '\f':
		return true
	}
	return false
}
