package chartrepo

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
)

// inProcessTransport hands requests straight to the registry handler, so
// Publish pushes with neither a network round trip nor credentials, while
// network clients only ever get GET and HEAD, behind basic auth.
type inProcessTransport struct{ h http.Handler }

func (t inProcessTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		defer req.Body.Close()
	}
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	in := req.Clone(req.Context())
	if in.Body == nil {
		in.Body = http.NoBody
	}
	in.RequestURI = req.URL.RequestURI()
	w := &bufferedResponse{header: http.Header{}}
	t.h.ServeHTTP(w, in)
	w.WriteHeader(http.StatusOK) // no-op unless the handler wrote nothing
	resp := &http.Response{
		Status:        strconv.Itoa(w.status) + " " + http.StatusText(w.status),
		StatusCode:    w.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.sent,
		Body:          io.NopCloser(bytes.NewReader(w.body.Bytes())),
		ContentLength: int64(w.body.Len()),
		Request:       req,
	}
	if req.Method == http.MethodHead {
		resp.Body = http.NoBody
		resp.ContentLength = -1
		if n, err := strconv.ParseInt(w.sent.Get("Content-Length"), 10, 64); err == nil {
			resp.ContentLength = n
		}
	}
	return resp, nil
}

// bufferedResponse is the http.ResponseWriter of inProcessTransport.
type bufferedResponse struct {
	header http.Header
	sent   http.Header // header as of WriteHeader, as a real server sends it
	status int
	body   bytes.Buffer
}

func (w *bufferedResponse) Header() http.Header { return w.header }

func (w *bufferedResponse) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
		w.sent = w.header.Clone()
	}
}

func (w *bufferedResponse) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}
