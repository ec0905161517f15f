package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
)

// printer writes coordctl's own output: one line of text, or one JSON object
// per line with --output json.
type printer struct {
	mu   sync.Mutex
	json bool
	w    io.Writer
}

// emit writes text in text mode and obj (a struct or map) in JSON mode.
func (p *printer) emit(text string, obj any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json {
		b, err := json.Marshal(obj)
		if err != nil {
			b = []byte(fmt.Sprintf(`{"error":%q}`, err.Error()))
		}
		b = append(b, '\n')
		_, _ = p.w.Write(b)
		return
	}
	_, _ = io.WriteString(p.w, text+"\n")
}

// warn prints a warning on stderr: a "coordctl: warning: …" line, or a JSON
// warning event with --output json.
func (st *state) warn(format string, args ...any) {
	msg := "coordctl: warning: " + fmt.Sprintf(format, args...)
	p := &printer{json: st.json, w: st.stderr}
	p.emit(msg, event{Event: "warning", Message: msg})
}

// event is a JSON line describing something coordctl did.
type event struct {
	Event    string `json:"event"`
	Lock     string `json:"lock,omitempty"`
	Election string `json:"election,omitempty"`
	Barrier  string `json:"barrier,omitempty"`
	Token    uint64 `json:"token,omitempty"`
	Session  string `json:"session,omitempty"`
	Count    int    `json:"count,omitempty"`
	PID      int    `json:"pid,omitempty"`
	Signal   string `json:"signal,omitempty"`
	Code     *int   `json:"code,omitempty"`
	Error    string `json:"error,omitempty"`
	Message  string `json:"message,omitempty"`
}
