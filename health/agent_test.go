package health

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestJudgeAgentLine(t *testing.T) {
	tests := []struct {
		line string
		ok   bool
		why  string
	}{
		{"up\n", true, ""},
		{"ready\r\n", true, ""},
		{"UP 75%\n", true, ""},
		{"75%", true, ""},
		{"maxconn:30 up # all good\n", true, ""},
		{"down\n", false, "agent says down"},
		{"up drain\n", false, "agent says up drain"},
		{"maint # deploying\n", false, "agent says maint"},
		{"0%\n", false, "agent says 0% (drain)"},
		{"fail,stopped\n", false, "agent says fail stopped"},
		{"\n", false, "agent said nothing"},
		{"bananas\n", false, `unknown word "bananas"`},
		{"-5%\n", false, "bad weight"},
		{"maxconn:x\n", false, "bad"},
	}
	for _, tc := range tests {
		err := judgeAgentLine(tc.line)
		if (err == nil) != tc.ok || (err != nil && !strings.Contains(err.Error(), tc.why)) {
			t.Errorf("%q: %v, want ok=%v %q", tc.line, err, tc.ok, tc.why)
		}
	}
}

// TestProbeAgent speaks to a real agent-check listener on loopback.
func TestProbeAgent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	reply := make(chan string, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(<-reply))
			c.Close()
		}
	}()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	target := Target{Key: "k", Addr: netip.MustParseAddr("127.0.0.1"), Check: Check{Type: TypeAgent, Port: port, Timeout: time.Second}}
	for _, tc := range []struct {
		line string
		ok   bool
	}{{"up 50%\n", true}, {"drain\n", false}} {
		reply <- tc.line
		if r := Probe(context.Background(), target); r.OK != tc.ok {
			t.Errorf("agent says %q: %+v", tc.line, r)
		}
	}
	closed := target
	closed.Check.Port = 1
	if r := Probe(context.Background(), closed); r.OK || !strings.Contains(r.Reason, "connect") {
		t.Errorf("closed port: %+v", r)
	}
}
