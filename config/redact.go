package config

import (
	"errors"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// hidden replaces a password, as net/url's URL.Redacted does.
const hidden = "xxxxx"

// checkURL reports why raw cannot be a PostgreSQL connection URL. Its errors
// never quote raw: when a URL fails to parse, the boundaries between its parts
// are uncertain, so any fragment of it might be part of the password.
func checkURL(raw string) error {
	if strings.TrimSpace(raw) != raw {
		return errors.New("has leading or trailing white space")
	}
	if !strings.HasPrefix(raw, "postgres://") && !strings.HasPrefix(raw, "postgresql://") {
		return errors.New("must start with postgres:// or postgresql://")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return urlError(err)
	}
	if atAfterAuthority(raw) {
		return errors.New("has an @ after the host" + encodeHint)
	}
	if strings.Contains(raw, "#") {
		return errors.New("has a # (a URL fragment)" + encodeHint)
	}
	// libpq lists several hosts separated by commas; net/url checks only the
	// last port.
	for _, hostPort := range strings.Split(u.Host, ",") {
		if port := portOf(hostPort); port != "" {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				return errors.New("has an invalid port (want 1 to 65535)" + encodeHint)
			}
		}
	}
	if _, err := url.ParseQuery(u.RawQuery); err != nil {
		return errors.New("has an invalid query string (separate parameters with &, percent-encode values)")
	}
	return nil
}

const encodeHint = "; percent-encode any of @ : / ? # % in the user name or password"

// urlError explains a net/url parse error without repeating any of the URL.
func urlError(err error) error {
	var escapeErr url.EscapeError
	var hostErr url.InvalidHostError
	msg := err.Error()
	switch {
	case errors.As(err, &escapeErr):
		return errors.New("has an invalid %-escape" + encodeHint)
	case errors.As(err, &hostErr):
		return errors.New("has an invalid character in the host name" + encodeHint)
	case strings.Contains(msg, "invalid port"):
		return errors.New("has an invalid port (want 1 to 65535)" + encodeHint)
	case strings.Contains(msg, "userinfo"):
		return errors.New("has an invalid user name or password" + encodeHint)
	case strings.Contains(msg, "control character"):
		return errors.New("contains a control character")
	}
	return errors.New("is not a valid URL" + encodeHint)
}

// atAfterAuthority reports an unencoded @ in the path, query or fragment of
// raw. It most likely ended a password holding an unencoded /, ? or #, which
// ended the authority early: the rest of the password is then read as a
// path, query or fragment, and shown wherever those are.
func atAfterAuthority(raw string) bool {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return false
	}
	if end := strings.IndexAny(rest, "/?#"); end >= 0 {
		return strings.Contains(rest[end:], "@")
	}
	return false
}

// portOf returns the port of host[:port] or [ipv6][:port], or "".
func portOf(hostPort string) string {
	if strings.HasPrefix(hostPort, "[") {
		if end := strings.LastIndex(hostPort, "]"); end >= 0 {
			hostPort = hostPort[end+1:]
			if !strings.HasPrefix(hostPort, ":") {
				return ""
			}
		}
	}
	if i := strings.LastIndex(hostPort, ":"); i >= 0 {
		return hostPort[i+1:]
	}
	return ""
}

// RedactURL returns raw with its passwords, in the user info and in password
// or sslpassword parameters, replaced by xxxxx. A URL that does not parse
// cannot be redacted reliably and is not shown at all.
func RedactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || atAfterAuthority(raw) {
		// The password may be anywhere in it.
		return "(invalid URL, not shown)"
	}
	u.Fragment, u.RawFragment = "", ""
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), hidden)
	}
	if q := u.Query(); q.Has("password") || q.Has("sslpassword") {
		for _, k := range []string{"password", "sslpassword"} {
			if q.Has(k) {
				q.Set(k, hidden)
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// minSecretLen is the shortest password RedactSecrets hunts for in free text;
// a one- or two-character password matches too much ordinary text to remove.
const minSecretLen = 3

// queryPassword finds password parameters even in a URL that does not parse.
var queryPassword = regexp.MustCompile(`(?i)[?&](?:ssl)?password=([^&#]*)`)

// RedactSecrets removes from text every password that the given URLs carry,
// in their raw and decoded forms. It is the last line of defence for messages
// that come from code outside this module, such as a driver's errors.
func RedactSecrets(text string, urls ...string) string {
	for _, raw := range urls {
		if raw == "" {
			continue
		}
		text = strings.ReplaceAll(text, raw, RedactURL(raw))
		for _, s := range secretsOf(raw) {
			if len(s) >= minSecretLen {
				text = strings.ReplaceAll(text, s, hidden)
			}
		}
	}
	return text
}

// secretsOf returns the passwords in raw, found both by parsing it and, since
// it may not parse, by looking for them where they usually are.
func secretsOf(raw string) []string {
	var secrets []string
	add := func(s string) {
		secrets = append(secrets, s)
		if dec, err := url.PathUnescape(s); err == nil && dec != s {
			secrets = append(secrets, dec)
		}
		if dec, err := url.QueryUnescape(s); err == nil && dec != s {
			secrets = append(secrets, dec)
		}
	}
	if u, err := url.Parse(raw); err == nil {
		if p, ok := u.User.Password(); ok {
			add(p)
		}
		for _, k := range []string{"password", "sslpassword"} {
			for _, v := range u.Query()[k] {
				add(v)
			}
		}
	}
	if _, rest, ok := strings.Cut(raw, "://"); ok {
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if _, p, ok := strings.Cut(rest[:at], ":"); ok {
				add(p)
				// An unencoded / ? # or @ may end what a parser takes
				// for the password early.
				if i := strings.IndexAny(p, "/?#@"); i > 0 {
					add(p[:i])
				}
			}
		}
	}
	for _, m := range queryPassword.FindAllStringSubmatch(raw, -1) {
		add(m[1])
	}
	return secrets
}

// RedactError returns err with every password of the given URLs removed
// from its message; errors.Is and errors.As still reach err itself.
func RedactError(err error, urls ...string) error {
	if err == nil {
		return nil
	}
	return &redactedError{msg: RedactSecrets(err.Error(), urls...), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
