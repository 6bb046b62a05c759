package escape

import (
	"net/url"
	"regexp"
	"strings"
)

// The links patchgate makes: a workflow run on GitHub (github.com or a
// GHE.com tenant), and a Run Command in an AWS console. A host matches
// itself or any subdomain; the path must be the shape patchgate builds.
var (
	githubHosts  = []string{"github.com", "ghe.com"}
	consoleHosts = []string{"console.aws.amazon.com", "console.amazonaws-us-gov.com", "console.amazonaws.cn"}
	runPath      = regexp.MustCompile(`^/[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}/actions/runs/[0-9]{1,20}(/attempts/[0-9]{1,5})?$`)
	commandPath  = regexp.MustCompile(`^/systems-manager/run-command/[A-Za-z0-9-]{1,64}$`)
	regionValue  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)
	hostPattern  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)
)

func hostIn(host string, hosts []string) bool {
	for _, h := range hosts {
		if host == h || strings.HasSuffix(host, "."+h) {
			return true
		}
	}
	return false
}

// URL returns raw as a link destination that is safe in markdown, or ""
// when it is not a link patchgate makes: https only, no user info or port,
// a GitHub workflow run or an AWS console Run Command page (region the only
// query), rebuilt from its checked parts, so nothing in it can end the link
// or the table cell, or lead anywhere else.
func URL(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Scheme != "https" || u.User != nil || u.Opaque != "" || u.Port() != "" || u.RawPath != "" {
		return ""
	}
	host := u.Hostname()
	if !hostPattern.MatchString(host) {
		return ""
	}
	switch {
	case hostIn(host, githubHosts) && runPath.MatchString(u.Path):
		return "https://" + host + u.Path
	case hostIn(host, consoleHosts) && commandPath.MatchString(u.Path):
		out := "https://" + host + u.Path
		if region := u.Query().Get("region"); regionValue.MatchString(region) {
			out += "?region=" + region
		}
		return out
	}
	return ""
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
