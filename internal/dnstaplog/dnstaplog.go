// Package dnstaplog writes the queries a server answers, and its replies,
// as dnstap (https://dnstap.info) to a Frame Streams file or unix socket,
// so that existing tools (dnstap-read, dnstap-ldns, collectors) can read
// them.
//
// The query path only copies the two messages into a queue; a goroutine
// encodes and writes them. When the output falls behind, messages are
// dropped and counted rather than slowing answers.
package dnstaplog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	dnstap "github.com/dnstap/golang-dnstap"
	"google.golang.org/protobuf/proto"
)

// Options configures a Logger. Exactly one of Socket and File is set.
type Options struct {
	// Socket is the path of a unix socket a dnstap collector listens on
	// (e.g. "fstrm_capture -u PATH"); the connection is retried while the
	// collector is away, and messages meanwhile are dropped.
	Socket string
	// File is a file to write; it is truncated at start.
	File string
	// Identity and Version go into every message (dnstap's identity and
	// version fields); empty leaves them out.
	Identity, Version string
	// Queue is how many query/reply pairs wait for the writer at most
	// (default 10000); beyond that they are dropped.
	Queue  int
	Logger *slog.Logger
}

// Logger is a dnstap output. Log may be called from any goroutine.
type Logger struct {
	opts    Options
	out     dnstap.Output
	queue   chan *entry
	pool    sync.Pool
	sent    atomic.Uint64
	dropped atomic.Uint64
}

type entry struct {
	query, reply   []byte
	client, server netip.AddrPort
	tcp            bool
	at             time.Time
}

// New opens the output. A file that cannot be created is an error now; a
// socket nobody listens on yet is not (the collector may start later).
func New(o Options) (*Logger, error) {
	if (o.Socket == "") == (o.File == "") {
		return nil, errors.New("dnstap: set exactly one of socket and file")
	}
	if o.Queue <= 0 {
		o.Queue = 10000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Logger{opts: o, queue: make(chan *entry, o.Queue)}
	l.pool.New = func() any { return new(entry) }
	if o.File != "" {
		out, err := dnstap.NewFrameStreamOutputFromFilename(o.File)
		if err != nil {
			return nil, fmt.Errorf("dnstap: file %s: %w", o.File, err)
		}
		l.out = out
	} else {
		out, err := dnstap.NewFrameStreamSockOutput(&net.UnixAddr{Name: o.Socket, Net: "unix"})
		if err != nil {
			return nil, fmt.Errorf("dnstap: socket %s: %w", o.Socket, err)
		}
		out.SetTimeout(time.Second)
		out.SetFlushTimeout(time.Second)
		out.SetRetryInterval(2 * time.Second)
		l.out = out
	}
	return l, nil
}

// Log queues a query and its reply (reply nil: none was sent), copying
// both. It never blocks.
func (l *Logger) Log(query, reply []byte, client, server netip.AddrPort, tcp bool) {
	e := l.pool.Get().(*entry)
	e.query = append(e.query[:0], query...)
	e.reply = append(e.reply[:0], reply...)
	e.client, e.server, e.tcp, e.at = client, server, tcp, time.Now()
	select {
	case l.queue <- e:
	default:
		if len(reply) > 0 {
			l.dropped.Add(2)
		} else {
			l.dropped.Add(1)
		}
		l.pool.Put(e)
	}
}

// Sent returns how many messages were handed to the output.
func (l *Logger) Sent() uint64 { return l.sent.Load() }

// Dropped returns how many messages were dropped because the output fell
// behind (a query and its reply count as two).
func (l *Logger) Dropped() uint64 { return l.dropped.Load() }

// Run encodes and writes queued messages until ctx is done, then writes
// what is queued, flushes and closes the output.
func (l *Logger) Run(ctx context.Context) error {
	go l.out.RunOutputLoop()
	defer l.out.Close()
	where := l.opts.File
	if where == "" {
		where = "unix:" + l.opts.Socket
	}
	l.opts.Logger.Info("dnstap output open", "output", where)
	for {
		select {
		case e := <-l.queue:
			l.write(e)
		case <-ctx.Done():
			for {
				select {
				case e := <-l.queue:
					l.write(e)
				default:
					return nil
				}
			}
		}
	}
}

// write sends e as an AUTH_QUERY message and, when there was a reply, an
// AUTH_RESPONSE message.
func (l *Logger) write(e *entry) {
	defer l.pool.Put(e)
	l.send(l.message(e, dnstap.Message_AUTH_QUERY))
	if len(e.reply) > 0 {
		l.send(l.message(e, dnstap.Message_AUTH_RESPONSE))
	}
}

func (l *Logger) message(e *entry, typ dnstap.Message_Type) *dnstap.Dnstap {
	fam, proto := dnstap.SocketFamily_INET, dnstap.SocketProtocol_UDP
	if e.client.Addr().Is6() {
		fam = dnstap.SocketFamily_INET6
	}
	if e.tcp {
		proto = dnstap.SocketProtocol_TCP
	}
	sec, nsec := uint64(e.at.Unix()), uint32(e.at.Nanosecond())
	m := &dnstap.Message{
		Type:           &typ,
		SocketFamily:   &fam,
		SocketProtocol: &proto,
		QueryAddress:   e.client.Addr().AsSlice(),
		QueryPort:      ptr(uint32(e.client.Port())),
		QueryTimeSec:   &sec,
		QueryTimeNsec:  &nsec,
	}
	if e.server.IsValid() {
		m.ResponseAddress = e.server.Addr().AsSlice()
		m.ResponsePort = ptr(uint32(e.server.Port()))
	}
	if typ == dnstap.Message_AUTH_QUERY {
		m.QueryMessage = e.query
	} else {
		// The reply is ready when it is queued: one clock read serves both.
		m.ResponseTimeSec, m.ResponseTimeNsec = &sec, &nsec
		m.ResponseMessage = e.reply
	}
	t := dnstap.Dnstap_MESSAGE
	d := &dnstap.Dnstap{Type: &t, Message: m}
	if l.opts.Identity != "" {
		d.Identity = []byte(l.opts.Identity)
	}
	if l.opts.Version != "" {
		d.Version = []byte(l.opts.Version)
	}
	return d
}

func (l *Logger) send(d *dnstap.Dnstap) {
	buf, err := proto.Marshal(d)
	if err != nil {
		l.dropped.Add(1) // cannot happen with the fields we set
		return
	}
	l.out.GetOutputChannel() <- buf
	l.sent.Add(1)
}

func ptr[T any](v T) *T { return &v }
