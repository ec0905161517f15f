package coord

import (
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// DefaultURL is the backend used when none is given: a local etcd.
const DefaultURL = "etcd://127.0.0.1:2379"

// URL is a parsed backend URL (see the README for every form):
//
//	etcd://[user:pass@]h1:2379[,h2:2379…][/prefix]   etcds://…?ca=&cert=&key=
//	zk://[user:pass@]h1:2181[,h2:2181…][/chroot]
//	redis://[user:pass@]h:6379[/db]   rediss://…   redis://h1,h2,h3?mode=redlock
//	consul://h:8500[/prefix]?token=&dc=   consuls://…
//
// Its String method includes secrets; use Redacted in messages and logs.
type URL struct {
	// Scheme is the scheme as written, lower-cased (e.g. "etcds").
	Scheme string
	// User and Password come from the userinfo part; HasPassword tells an empty
	// password from none.
	User        string
	Password    string
	HasPassword bool
	// Hosts are host:port pairs, with the backend's default port filled in.
	Hosts []string
	// Path is the part after the hosts, without its leading '/': an etcd or
	// Consul key prefix, a ZooKeeper chroot, a Redis database number.
	Path string
	// Query holds the parameters after '?'.
	Query url.Values
}

var defaultPorts = map[string]string{
	"etcd": "2379", "zk": "2181", "redis": "6379", "consul": "8500",
}

// secretParams are query parameters whose values never appear in messages.
var secretParams = map[string]bool{
	"token": true, "password": true, "pass": true, "secret": true, "key": true, "auth": true,
}

// Backend returns the scheme without its TLS suffix: "etcd", "zk", "redis" or
// "consul" for the built-in backends.
func (u *URL) Backend() string {
	if _, ok := defaultPorts[u.Scheme]; ok {
		return u.Scheme
	}
	if s := strings.TrimSuffix(u.Scheme, "s"); defaultPorts[s] != "" {
		return s
	}
	return u.Scheme
}

// TLS reports whether the scheme asks for TLS (etcds, rediss, consuls, zks).
func (u *URL) TLS() bool { return u.Backend() != u.Scheme }

// String formats the URL with its secrets. Never log it; use Redacted.
func (u *URL) String() string { return u.format(false) }

// Redacted formats the URL with the password and secret query parameters
// (token, password, key, ...) replaced by "xxxxx".
func (u *URL) Redacted() string { return u.format(true) }

func (u *URL) format(redact bool) string {
	var b strings.Builder
	b.WriteString(u.Scheme)
	b.WriteString("://")
	if u.User != "" || u.HasPassword {
		b.WriteString(url.PathEscape(u.User))
		if u.HasPassword {
			b.WriteByte(':')
			if redact {
				b.WriteString("xxxxx")
			} else {
				b.WriteString(url.PathEscape(u.Password))
			}
		}
		b.WriteByte('@')
	}
	b.WriteString(strings.Join(u.Hosts, ","))
	if u.Path != "" {
		b.WriteByte('/')
		b.WriteString(u.Path)
	}
	if len(u.Query) > 0 {
		keys := make([]string, 0, len(u.Query))
		for k := range u.Query {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		sep := byte('?')
		for _, k := range keys {
			for _, v := range u.Query[k] {
				b.WriteByte(sep)
				sep = '&'
				b.WriteString(url.QueryEscape(k))
				b.WriteByte('=')
				if redact && secretParams[strings.ToLower(k)] {
					b.WriteString("xxxxx")
				} else {
					b.WriteString(url.QueryEscape(v))
				}
			}
		}
	}
	return b.String()
}

// RedactString replaces every occurrence of the URL's secrets in s, for
// errors that come from a native client and may quote them.
func (u *URL) RedactString(s string) string {
	hide := func(secret string) {
		if secret == "" {
			return
		}
		for _, form := range []string{secret, url.PathEscape(secret), url.QueryEscape(secret)} {
			s = strings.ReplaceAll(s, form, "xxxxx")
		}
	}
	if u.HasPassword {
		hide(u.Password)
	}
	for k, vs := range u.Query {
		if secretParams[strings.ToLower(k)] {
			for _, v := range vs {
				hide(v)
			}
		}
	}
	return s
}

// ParseURL parses a backend URL. Its errors wrap ErrInvalidURL, name the part
// that is wrong, and never quote a password or token.
func ParseURL(raw string) (*URL, error) {
	bad := func(shown, format string, args ...any) error {
		return fmt.Errorf("%w %q: %s", ErrInvalidURL, shown, fmt.Sprintf(format, args...))
	}
	shown := redactRaw(raw)
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || scheme == "" {
		return nil, bad(shown, "want scheme://host[:port][,host…][/path], e.g. %s", DefaultURL)
	}
	u := &URL{Scheme: strings.ToLower(scheme), Query: url.Values{}}
	for _, c := range u.Scheme {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return nil, bad(shown, "scheme %q has an invalid character", scheme)
		}
	}
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		return nil, bad(shown, "a backend URL has no #fragment")
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		q, err := url.ParseQuery(rest[i+1:])
		if err != nil {
			return nil, bad(shown, "query: %v", err)
		}
		u.Query = q
		rest = rest[:i]
	}
	authority, path, _ := strings.Cut(rest, "/")
	u.Path = strings.TrimSuffix(path, "/")
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		userinfo := authority[:at]
		authority = authority[at+1:]
		user, pass, hasPass := strings.Cut(userinfo, ":")
		var err error
		if u.User, err = url.PathUnescape(user); err != nil {
			return nil, bad(shown, "user name is not valid percent-encoding")
		}
		if u.Password, err = url.PathUnescape(pass); err != nil {
			return nil, bad(shown, "password is not valid percent-encoding")
		}
		u.HasPassword = hasPass
	}
	if authority == "" {
		return nil, bad(shown, "no host; want e.g. %s://127.0.0.1:%s", u.Scheme, orDefault(defaultPorts[u.Backend()], "PORT"))
	}
	for _, h := range strings.Split(authority, ",") {
		hp, err := hostPort(h, defaultPorts[u.Backend()])
		if err != nil {
			return nil, bad(shown, "%v", err)
		}
		u.Hosts = append(u.Hosts, hp)
	}
	return u, nil
}

func hostPort(h, defPort string) (string, error) {
	if h == "" {
		return "", fmt.Errorf("empty host in the host list")
	}
	host, port := h, ""
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", fmt.Errorf("host %q: missing ']'", h)
		}
		host = h[1:end]
		if rest := h[end+1:]; rest != "" {
			if !strings.HasPrefix(rest, ":") {
				return "", fmt.Errorf("host %q: junk after ']'", h)
			}
			port = rest[1:]
		}
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 {
		host, port = h[:i], h[i+1:]
		if strings.Contains(host, ":") {
			return "", fmt.Errorf("host %q: put an IPv6 address in brackets, e.g. [::1]:%s", h, orDefault(defPort, "PORT"))
		}
	}
	if host == "" {
		return "", fmt.Errorf("host %q: empty host name", h)
	}
	for _, c := range host {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == ':' || c == '%') {
			return "", fmt.Errorf("host %q: invalid character %q", h, c)
		}
	}
	if port == "" {
		if defPort == "" {
			return "", fmt.Errorf("host %q: no port", h)
		}
		port = defPort
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("host %q: port %q is not a number from 1 to 65535", h, port)
	}
	return net.JoinHostPort(host, port), nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// redactRaw hides the password and secret parameters of a URL that may not
// parse, for error messages.
func redactRaw(raw string) string {
	out := raw
	if _, rest, ok := strings.Cut(raw, "://"); ok {
		authority := rest
		if i := strings.IndexAny(authority, "/?#"); i >= 0 {
			authority = authority[:i]
		}
		if at := strings.LastIndexByte(authority, '@'); at >= 0 {
			if user, _, hasPass := strings.Cut(authority[:at], ":"); hasPass {
				out = strings.Replace(out, authority[:at], user+":xxxxx", 1)
			}
		}
	}
	if i := strings.IndexByte(out, '?'); i >= 0 {
		parts := strings.Split(out[i+1:], "&")
		for j, p := range parts {
			k, _, _ := strings.Cut(p, "=")
			if secretParams[strings.ToLower(k)] {
				parts[j] = k + "=xxxxx"
			}
		}
		out = out[:i+1] + strings.Join(parts, "&")
	}
	return out
}
