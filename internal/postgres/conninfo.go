package postgres

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// ConnInfo describes a libpq connection to a PostgreSQL server.
type ConnInfo struct {
	Host            string
	Port            int
	User            string
	Password        string
	DBName          string
	ApplicationName string
}

// String renders a libpq key=value connection string, values quoted and
// escaped as libpq expects, with sslmode=prefer and connect_timeout=3. It
// contains the password: never log it, use Redacted.
func (c ConnInfo) String() string { return c.render(false) }

// Redacted is String with the password masked, for logs and errors.
func (c ConnInfo) Redacted() string { return c.render(true) }

func (c ConnInfo) render(redact bool) string {
	var kv []connParam
	add := func(k, v string) {
		if v != "" {
			kv = append(kv, connParam{k, v})
		}
	}
	add("host", c.Host)
	if c.Port > 0 {
		add("port", strconv.Itoa(c.Port))
	}
	add("user", c.User)
	if c.Password != "" {
		if redact {
			add("password", redactedPassword)
		} else {
			add("password", c.Password)
		}
	}
	add("dbname", c.DBName)
	add("application_name", c.ApplicationName)
	add("sslmode", "prefer")
	add("connect_timeout", "3")
	return renderConnParams(kv)
}

const redactedPassword = "********"

// connParam is one key=value pair of a libpq connection string.
type connParam struct{ key, val string }

// quoteConnValue quotes a libpq connection string value when needed.
func quoteConnValue(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\n\r\f\v'\\") {
		return v
	}
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(v) + "'"
}

func renderConnParams(kv []connParam) string {
	parts := make([]string, 0, len(kv))
	for _, p := range kv {
		parts = append(parts, p.key+"="+quoteConnValue(p.val))
	}
	return strings.Join(parts, " ")
}

func isConnSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// parseConnParams parses a libpq key=value connection string as libpq's
// conninfo_parse does.
func parseConnParams(s string) ([]connParam, error) {
	var out []connParam
	n := len(s)
	pos := 0
	for {
		for pos < n && isConnSpace(s[pos]) {
			pos++
		}
		if pos >= n {
			return out, nil
		}
		start := pos
		for pos < n && s[pos] != '=' && !isConnSpace(s[pos]) {
			pos++
		}
		key := s[start:pos]
		for pos < n && isConnSpace(s[pos]) {
			pos++
		}
		if pos >= n || s[pos] != '=' || key == "" {
			return nil, fmt.Errorf("missing \"=\" after %q in connection string", key)
		}
		pos++
		for pos < n && isConnSpace(s[pos]) {
			pos++
		}
		var val strings.Builder
		if pos < n && s[pos] == '\'' {
			pos++
			closed := false
			for pos < n {
				c := s[pos]
				if c == '\\' && pos+1 < n {
					val.WriteByte(s[pos+1])
					pos += 2
					continue
				}
				pos++
				if c == '\'' {
					closed = true
					break
				}
				val.WriteByte(c)
			}
			if !closed {
				return nil, fmt.Errorf("unterminated quoted string in connection string")
			}
		} else {
			for pos < n && !isConnSpace(s[pos]) {
				c := s[pos]
				if c == '\\' && pos+1 < n {
					val.WriteByte(s[pos+1])
					pos += 2
					continue
				}
				val.WriteByte(c)
				pos++
			}
		}
		out = append(out, connParam{key, val.String()})
	}
}

func isConnURI(s string) bool {
	s = strings.TrimSpace(s)
	return strings.HasPrefix(s, "postgresql://") || strings.HasPrefix(s, "postgres://")
}

// RedactConnString masks the password in a libpq connection string (either
// key=value or URI form). An unparseable string is replaced entirely.
func RedactConnString(s string) string {
	out, _, err := rewriteConnString(s, func(kv []connParam) []connParam {
		for j := range kv {
			if kv[j].key == "password" {
				kv[j].val = redactedPassword
			}
		}
		return kv
	})
	if err != nil {
		return "<unparseable connection string>"
	}
	return out
}

// sanitizeConnString removes the password from a connection string.
func sanitizeConnString(s string) string {
	out, _, err := rewriteConnString(s, func(kv []connParam) []connParam {
		res := kv[:0]
		for _, p := range kv {
			if p.key != "password" {
				res = append(res, p)
			}
		}
		return res
	})
	if err != nil {
		return "<unparseable connection string>"
	}
	return out
}

// rewriteConnString parses s, lets fn edit the parameters and renders the
// result in the same form. It also returns the password s contained.
func rewriteConnString(s string, fn func([]connParam) []connParam) (string, string, error) {
	if isConnURI(s) {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil {
			return "", "", fmt.Errorf("invalid connection URI: %w", redactURLError(err))
		}
		var kv []connParam
		pw, hasPW := "", false
		if u.User != nil {
			pw, hasPW = u.User.Password()
			if hasPW {
				kv = append(kv, connParam{"password", pw})
			}
		}
		q := u.Query()
		for k, vs := range q {
			for _, v := range vs {
				kv = append(kv, connParam{k, v})
			}
		}
		for _, p := range kv {
			if p.key == "password" {
				pw = p.val
			}
		}
		kv = fn(kv)
		user := ""
		if u.User != nil {
			user = u.User.Username()
		}
		q = url.Values{}
		for _, p := range kv {
			if p.key == "password" {
				continue
			}
			q.Add(p.key, p.val)
		}
		u.User = nil
		if user != "" {
			u.User = url.User(user)
		}
		for _, p := range kv {
			if p.key == "password" {
				u.User = url.UserPassword(user, p.val)
			}
		}
		u.RawQuery = q.Encode()
		return u.String(), pw, nil
	}
	kv, err := parseConnParams(s)
	if err != nil {
		return "", "", err
	}
	pw := ""
	for _, p := range kv {
		if p.key == "password" {
			pw = p.val
		}
	}
	return renderConnParams(fn(kv)), pw, nil
}

// redactURLError drops the URL (which may hold a password) from a url
// parse error.
func redactURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}
