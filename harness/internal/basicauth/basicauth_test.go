package basicauth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAllows(t *testing.T) {
	user, pass := Random("charts-")
	if !strings.HasPrefix(user, "charts-") || len(user) != len("charts-")+8 || len(pass) != 32 {
		t.Fatalf("Random = %q, %q", user, pass)
	}
	if u2, p2 := Random("charts-"); u2 == user || p2 == pass {
		t.Fatal("two runs got the same credentials")
	}
	tests := []struct {
		name       string
		user, pass string
		set        bool
		want       bool
	}{
		{"right", user, pass, true, true},
		{"wrong password", user, "x", true, false},
		{"wrong user", "x", pass, true, false},
		{"none", "", "", false, false},
		{"empty against empty is still no header", "", "", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.set {
				r.SetBasicAuth(tt.user, tt.pass)
			}
			if got := Allows(r, user, pass); got != tt.want {
				t.Fatalf("Allows = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestChallenge(t *testing.T) {
	w := httptest.NewRecorder()
	Challenge(w, "chart-server")
	if w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") != `Basic realm="chart-server"` {
		t.Fatalf("Challenge: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
}
