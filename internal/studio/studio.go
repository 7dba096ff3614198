// Package studio is Berth Studio, the web UI `berth server` serves at /:
// Go templates rendered on the server from the API's answers, a small
// script for what is live (operation events, logs, plots, scoring), and
// no build step: `go build` embeds it all.
//
// The Studio holds no authority of its own. A user signs in with an API
// token, which the Studio keeps sealed in an HttpOnly cookie (never in the
// URL or the browser's storage), and every page and action is an API call
// made with that token: the server's own authorization decides what a
// reader, contributor or owner may see and do, whatever the page shows.
// Every state-changing request carries the session's CSRF token, and
// pages allow no inline script (Content-Security-Policy).
package studio

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/client"
)

//go:embed static templates
var files embed.FS

// Options configure a Studio.
type Options struct {
	// API is the server's API handler (authentication included): the
	// Studio calls it in process with the session's token.
	API http.Handler
	// Seal and Open encrypt and decrypt the session cookie with the
	// server's secret key.
	Seal func([]byte) string
	Open func(string) ([]byte, error)
	Log  *slog.Logger
}

// Studio serves the UI.
type Studio struct {
	opts  Options
	mux   *http.ServeMux
	pages *pages
}

const (
	cookieName = "berth_session"
	// sessionFor is how long a sign-in lasts.
	sessionFor = 12 * time.Hour
	csrfHeader = "X-CSRF-Token"
	csrfField  = "csrf"
)

// csp allows the Studio's own scripts, styles and connections only.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

// New returns the Studio.
func New(o Options) (*Studio, error) {
	p, err := parsePages()
	if err != nil {
		return nil, err
	}
	s := &Studio{opts: o, mux: http.NewServeMux(), pages: p}
	static, _ := fs.Sub(files, "static")
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", cacheFor(time.Hour, http.FileServerFS(static))))
	s.mux.HandleFunc("GET /signin", s.signinPage)
	s.mux.HandleFunc("POST /signin", s.signin)
	s.mux.HandleFunc("POST /signout", s.signed(s.signout))
	s.mux.Handle("/ui/api/", s.signed(s.proxy))
	s.routes()
	return s, nil
}

// ServeHTTP sets the security headers every answer carries, and refuses a
// state-changing request without the session's CSRF token.
func (s *Studio) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	s.mux.ServeHTTP(w, r)
}

func cacheFor(d time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "private, max-age="+strconv.Itoa(int(d.Seconds())))
		h.ServeHTTP(w, r)
	})
}

// session is what the cookie holds, sealed.
type session struct {
	Token   string    `json:"t"`
	CSRF    string    `json:"c"`
	Expires time.Time `json:"e"`
	// Who the token is, as the API said at sign-in (for what pages show;
	// the API decides what they may do).
	Role      string `json:"r"`
	Workspace string `json:"w,omitempty"`
	TokenID   string `json:"i"`
}

type sessionKey struct{}

func sessionOf(ctx context.Context) *session { s, _ := ctx.Value(sessionKey{}).(*session); return s }

// read returns the request's session, if its cookie is valid.
func (s *Studio) read(r *http.Request) *session {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return nil
	}
	raw, err := s.opts.Open(c.Value)
	if err != nil {
		return nil
	}
	var sess session
	if json.Unmarshal(raw, &sess) != nil || time.Now().After(sess.Expires) || sess.Token == "" {
		return nil
	}
	return &sess
}

// signed runs h with the session, or sends the browser to sign in. A
// state-changing request must carry the session's CSRF token (header or
// form field), or it gets 403.
func (s *Studio) signed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess := s.read(r)
		if sess == nil {
			if r.Method == http.MethodGet && !strings.HasPrefix(r.URL.Path, "/ui/api/") {
				http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			writeProblem(w, http.StatusUnauthorized, api.CodeUnauthorized, "sign in again: the session has ended")
			return
		}
		if !safeMethod(r.Method) {
			got := r.Header.Get(csrfHeader)
			// Forms carry it as a field; the page's script (and so every
			// call through /ui/api/, whose bodies are the API's) as a header.
			if got == "" && !strings.HasPrefix(r.URL.Path, "/ui/api/") {
				r.Body = http.MaxBytesReader(w, r.Body, 16<<20)
				got = r.PostFormValue(csrfField)
			}
			if subtle.ConstantTimeCompare([]byte(got), []byte(sess.CSRF)) != 1 {
				writeProblem(w, http.StatusForbidden, "CSRFTokenMissing", "this request lacks the page's CSRF token: reload the page and try again")
				return
			}
		}
		h(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, sess)))
	}
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

func writeProblem(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(api.ErrorResponse{Error: api.Error{Code: code, Message: msg}})
}

// client calls the API in process with the session's token.
func (s *Studio) client(r *http.Request) *client.Client {
	return s.clientFor(sessionOf(r.Context()).Token)
}

func (s *Studio) clientFor(token string) *client.Client {
	c, _ := client.New("http://studio.internal", token)
	c.UserAgent = "berth-studio"
	return c.WithHTTPClient(&http.Client{Transport: inProcess{s.opts.API}})
}

func (s *Studio) signinPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, "signin", http.StatusOK, map[string]any{"Next": safeNext(r.URL.Query().Get("next"))})
}

// signin exchanges a token for a session cookie. The form needs no CSRF
// token (there is no session yet), and the cookie is SameSite=Strict.
func (s *Studio) signin(w http.ResponseWriter, r *http.Request) {
	token := strings.TrimSpace(r.PostFormValue("token"))
	next := safeNext(r.PostFormValue("next"))
	fail := func(msg string) {
		s.render(w, r, "signin", http.StatusUnauthorized, map[string]any{"Next": next, "Error": msg})
	}
	if token == "" {
		fail("Paste an API token (berth token create, or DATA_DIR/admin.token for the owner).")
		return
	}
	me, err := s.clientFor(token).WhoAmI(r.Context())
	if err != nil {
		if errors.Is(err, client.ErrUnauthorized) {
			fail("That token is not valid (unknown or revoked).")
			return
		}
		fail("Signing in failed: " + err.Error())
		return
	}
	csrf := make([]byte, 24)
	rand.Read(csrf)
	sess := session{Token: token, CSRF: base64.RawURLEncoding.EncodeToString(csrf), Expires: time.Now().Add(sessionFor),
		Role: me.Role, Workspace: me.Workspace, TokenID: me.ID}
	raw, _ := json.Marshal(sess)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: s.opts.Seal(raw), Path: "/", HttpOnly: true,
		Secure: secure(r), SameSite: http.SameSiteStrictMode, Expires: sess.Expires})
	s.opts.Log.Info("studio sign-in", "token", me.ID, "role", me.Role)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Studio) signout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", HttpOnly: true, Secure: secure(r),
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// secure: the cookie is only sent over HTTPS when the Studio is reached
// over HTTPS (directly or behind a proxy that says so).
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// safeNext keeps a redirect after sign-in on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

// proxy passes /ui/api/… to the API as /api/… with the session's token:
// the page's script streams events and logs, scores and uploads through
// it.
func (s *Studio) proxy(w http.ResponseWriter, r *http.Request) {
	r2 := r.Clone(r.Context())
	r2.URL.Path = strings.TrimPrefix(r.URL.Path, "/ui")
	r2.URL.RawPath = ""
	r2.RequestURI = r2.URL.RequestURI()
	r2.Header.Del("Cookie")
	r2.Header.Del(csrfHeader)
	r2.Header.Set("Authorization", "Bearer "+sessionOf(r.Context()).Token)
	s.opts.API.ServeHTTP(w, r2)
}
