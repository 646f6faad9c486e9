package dnstaplog

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	dnstap "github.com/dnstap/golang-dnstap"
	"github.com/miekg/dns"
	"google.golang.org/protobuf/proto"
)

// pair returns a packed query for name and a packed reply to it.
func pair(t *testing.T, name string) (q, r []byte) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	q, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	resp := new(dns.Msg)
	resp.SetRcode(m, dns.RcodeNameError)
	r, err = resp.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return q, r
}

// decode reads frames from ch until it has n or time runs out.
func decode(t *testing.T, ch chan []byte, n int) []*dnstap.Dnstap {
	t.Helper()
	var out []*dnstap.Dnstap
	deadline := time.After(5 * time.Second)
	for len(out) < n {
		select {
		case frame, ok := <-ch:
			if !ok {
				t.Fatalf("input ended after %d of %d messages", len(out), n)
			}
			d := new(dnstap.Dnstap)
			if err := proto.Unmarshal(frame, d); err != nil {
				t.Fatalf("frame %d: %v", len(out), err)
			}
			out = append(out, d)
		case <-deadline:
			t.Fatalf("got %d of %d messages", len(out), n)
		}
	}
	return out
}

// checkMessages checks that msgs are a query and a reply per name, with
// the addresses and packets logged.
func checkMessages(t *testing.T, msgs []*dnstap.Dnstap, names []string, client, server netip.AddrPort, tcp bool) {
	t.Helper()
	for i, d := range msgs {
		m := d.GetMessage()
		name := names[i/2]
		wantType := dnstap.Message_AUTH_QUERY
		packet := m.GetQueryMessage()
		if i%2 == 1 {
			wantType, packet = dnstap.Message_AUTH_RESPONSE, m.GetResponseMessage()
		}
		if m.GetType() != wantType || string(d.GetIdentity()) != "ns1" || string(d.GetVersion()) != "meridian test" {
			t.Errorf("message %d: type %v identity %q version %q", i, m.GetType(), d.GetIdentity(), d.GetVersion())
		}
		var msg dns.Msg
		if err := msg.Unpack(packet); err != nil || msg.Question[0].Name != name {
			t.Errorf("message %d: packet for %v (%v), want %s", i, msg.Question, err, name)
		}
		if a, _ := netip.AddrFromSlice(m.GetQueryAddress()); a != client.Addr() || m.GetQueryPort() != uint32(client.Port()) {
			t.Errorf("message %d: client %v:%d, want %v", i, a, m.GetQueryPort(), client)
		}
		if a, _ := netip.AddrFromSlice(m.GetResponseAddress()); a != server.Addr() || m.GetResponsePort() != uint32(server.Port()) {
			t.Errorf("message %d: server %v:%d, want %v", i, a, m.GetResponsePort(), server)
		}
		wantProto := dnstap.SocketProtocol_UDP
		if tcp {
			wantProto = dnstap.SocketProtocol_TCP
		}
		if m.GetSocketProtocol() != wantProto || m.GetQueryTimeSec() == 0 {
			t.Errorf("message %d: protocol %v time %d", i, m.GetSocketProtocol(), m.GetQueryTimeSec())
		}
	}
}

func TestOutputs(t *testing.T) {
	client := netip.MustParseAddrPort("[2001:db8::7]:40000")
	server := netip.MustParseAddrPort("127.0.0.1:53")
	names := []string{"a.example.", "b.example.", "c.example."}
	for _, kind := range []string{"file", "socket"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			o := Options{Identity: "ns1", Version: "meridian test"}
			frames := make(chan []byte, 16)
			if kind == "file" {
				o.File = filepath.Join(dir, "tap.fstrm")
			} else {
				o.Socket = filepath.Join(dir, "tap.sock")
				in, err := dnstap.NewFrameStreamSockInputFromPath(o.Socket)
				if err != nil {
					t.Fatal(err)
				}
				go in.ReadInto(frames)
			}
			l, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error)
			go func() { done <- l.Run(ctx) }()
			for _, n := range names {
				q, r := pair(t, n)
				l.Log(q, r, client, server, kind == "socket")
			}
			if kind == "socket" {
				checkMessages(t, decode(t, frames, 2*len(names)), names, client, server, true)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if kind == "file" {
				in, err := dnstap.NewFrameStreamInputFromFilename(o.File)
				if err != nil {
					t.Fatal(err)
				}
				go func() { in.ReadInto(frames); close(frames) }()
				checkMessages(t, decode(t, frames, 2*len(names)), names, client, server, false)
			}
			if l.Sent() != uint64(2*len(names)) || l.Dropped() != 0 {
				t.Errorf("sent %d dropped %d", l.Sent(), l.Dropped())
			}
		})
	}
}

// TestDropsWhenBehind checks that Log never blocks: with the queue full
// and nobody writing, pairs are dropped and counted.
func TestDropsWhenBehind(t *testing.T) {
	l, err := New(Options{File: filepath.Join(t.TempDir(), "tap"), Queue: 2})
	if err != nil {
		t.Fatal(err)
	}
	q, r := pair(t, "a.example.")
	for range 5 {
		l.Log(q, r, netip.MustParseAddrPort("192.0.2.1:1"), netip.AddrPort{}, false)
	}
	l.Log(q, nil, netip.MustParseAddrPort("192.0.2.1:1"), netip.AddrPort{}, false) // no reply: one message
	if got := l.Dropped(); got != 3*2+1 {
		t.Errorf("dropped %d messages, want 7", got)
	}
}

func TestOptions(t *testing.T) {
	for _, o := range []Options{
		{},
		{File: "a", Socket: "b"},
		{File: filepath.Join(t.TempDir(), "missing", "dir", "tap")},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}
