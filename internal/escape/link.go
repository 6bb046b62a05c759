package escape

import (
	"net/url"
	"regexp"
	"strings"
)

// linkHosts are the hosts patchgate links to: GitHub (its runs) and the AWS
// consoles (its commands). A host matches itself or any subdomain.
var linkHosts = []string{"github.com", "ghe.com", "console.aws.amazon.com", "console.amazonaws-us-gov.com", "console.amazonaws.cn"}

var hostPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)

// URL returns raw as a link destination that is safe in markdown, or ""
// when it is not a link patchgate makes: only https, no user info, a host
// of linkHosts (no port), and every path segment and query value
// percent-encoded again, so no space, parenthesis, quote, pipe or angle
// bracket is left to end the link or the table cell. The fragment is
// dropped.
func URL(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Scheme != "https" || u.User != nil || u.Opaque != "" || u.Port() != "" {
		return ""
	}
	host := u.Hostname()
	if !hostPattern.MatchString(host) {
		return ""
	}
	known := false
	for _, h := range linkHosts {
		if host == h || strings.HasSuffix(host, "."+h) {
			known = true
		}
	}
	if !known {
		return ""
	}
	var b strings.Builder
	b.WriteString("https://" + host)
	for _, seg := range strings.Split(strings.TrimPrefix(u.Path, "/"), "/") {
		if seg == "" {
			continue
		}
		b.WriteString("/" + url.PathEscape(seg))
	}
	if q := u.Query(); len(q) > 0 {
		b.WriteString("?" + q.Encode())
	}
	return b.String()
}

// Link renders a markdown link with text (escaped as Text) to dest (checked
// and encoded by URL); when dest is not a link patchgate makes, the text
// alone.
func Link(text, dest string, max int) string {
	t := Text(text, max)
	if t == "" {
		t = "link"
	}
	u := URL(dest)
	if u == "" {
		return t
	}
	return "[" + t + "](" + u + ")"
}

// MarkerName makes s safe inside an HTML comment marker: letters, digits,
// '.', '_' and '-' as they are, every other byte %XX, so the comment cannot
// be ended ("-->" has no '>') and two names never make the same marker.
func MarkerName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-' && !(i+1 < len(s) && s[i+1] == '-'):
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
		}
	}
	return b.String()
}
