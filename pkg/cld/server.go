package cld

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"nfsrecover/pkg/store"
)

// UpcallVersion is the highest message version this server speaks; it is
// the GetVersion answer.
const UpcallVersion = Version2

// Records is where the server keeps the clients' records and the grace
// epochs: the local database (DBRecords) or one server scope of a
// cluster on etcd (cluster.ScopeRecords). Every method that changes
// something returns nil only once the change is durable.
type Records interface {
	// Create records a client in the current epoch (insert or replace).
	Create(ctx context.Context, r store.CldRecord) error
	// Remove deletes a client from the current epoch; a missing one is
	// not an error.
	Remove(ctx context.Context, id []byte) error
	// Check is the check of "v0" kernels (store.Tx.CldCheck).
	Check(ctx context.Context, id []byte) (bool, error)
	// GraceStart opens a grace period (store.Tx.CldGraceStart).
	GraceStart(ctx context.Context) (store.Epochs, error)
	// GraceDone ends it (store.Tx.CldGraceDone).
	GraceDone(ctx context.Context) error
	// Reclaimable calls each with the records of epoch, a chunk of at
	// most limit at a time, in creation order, until there are no more
	// or each fails.
	Reclaimable(ctx context.Context, epoch uint64, limit int, each func([]store.CldRecord) error) error
}

// Server answers the kernel's upcalls from Records, as nfsdcld does from
// its SQLite file. It is safe for concurrent use: the kernel has several
// upcalls outstanding when several nfsd threads call, and their changes
// commit together.
type Server struct {
	Records Records
	Log     *slog.Logger
}

// errUnsupported marks an upcall the server cannot answer (unknown
// command): it is answered with -EOPNOTSUPP, then the pipe is reopened.
var errUnsupported = errors.New("unsupported command")

// Handle answers one upcall, raw as read from the pipe, by writing its
// downcalls to w: each Write is one downcall. Every reply that
// acknowledges a change is written only after the change is durable.
// Like nfsdcld, a reply is the upcall's own bytes with the status (and
// the member the command fills in) changed. It returns errUnsupported
// (wrapped) when the caller should reopen the pipe, and a write error.
func (s *Server) Handle(ctx context.Context, raw []byte, w io.Writer) error {
	buf := append([]byte(nil), raw...)
	m, err := Decode(raw)
	if err != nil {
		// A name or hash too long for its field: the change fails.
		s.log().Error("bad upcall", "err", err)
		status := int16(StatusEREMOTEIO)
		if m.Cmd == Check {
			status = StatusEACCES
		}
		return s.reply(w, buf, m, status)
	}
	switch m.Cmd {
	case Create:
		err = s.Records.Create(ctx, store.CldRecord{ID: m.Name, PrincHash: m.PrincHash})
		return s.reply(w, buf, m, s.statusOr(err, StatusEREMOTEIO, "create"))
	case Remove:
		err = s.Records.Remove(ctx, m.Name)
		return s.reply(w, buf, m, s.statusOr(err, StatusEREMOTEIO, "remove"))
	case Check:
		return s.check(ctx, w, buf, m)
	case GraceDone:
		err = s.Records.GraceDone(ctx)
		return s.reply(w, buf, m, s.statusOr(err, StatusEREMOTEIO, "grace done"))
	case GraceStart:
		return s.graceStart(ctx, w, buf, m)
	case GetVersion:
		buf[offNameLen] = UpcallVersion
		return s.reply(w, buf, m, StatusOK)
	}
	s.log().Warn("unsupported upcall", "cmd", m.Cmd, "xid", m.XID)
	if err := s.reply(w, buf, m, StatusEOPNOTSUPP); err != nil {
		return err
	}
	return fmt.Errorf("command %d: %w", m.Cmd, errUnsupported)
}

func (s *Server) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// statusOr maps a failed change to the status nfsdcld sends for it, and
// logs the failure.
func (s *Server) statusOr(err error, failed int16, what string) int16 {
	if err != nil {
		s.log().Error(what+" failed", "err", err)
		return failed
	}
	return StatusOK
}

// reply sets the status in buf and writes it as one downcall.
func (s *Server) reply(w io.Writer, buf []byte, m Msg, status int16) error {
	setStatus(buf, status)
	s.log().Debug("downcall", "cmd", m.Cmd, "xid", m.XID, "status", status)
	n, err := w.Write(buf)
	if err == nil && n != len(buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("downcall cmd %d xid %d: %w", m.Cmd, m.XID, err)
	}
	return nil
}

// check answers a "v0" kernel's Check: 0 when the client may reclaim,
// -EACCES otherwise (also on any database error, as nfsdcld).
func (s *Server) check(ctx context.Context, w io.Writer, buf []byte, m Msg) error {
	found, err := s.Records.Check(ctx, m.Name)
	if err != nil {
		s.log().Error("check failed", "err", err)
	}
	if err != nil || !found {
		return s.reply(w, buf, m, StatusEACCES)
	}
	return s.reply(w, buf, m, StatusOK)
}

// graceStart opens the grace period, then sends every client of the
// recovery epoch as a -EINPROGRESS reply on the upcall's xid, then the
// final status. Zero-length ids are skipped; names are unique (they are
// the keys of one bucket), so the kernel's reclaim count is exact. The
// epoch is read in pieces, so memory stays bounded whatever its size.
func (s *Server) graceStart(ctx context.Context, w io.Writer, buf []byte, m Msg) error {
	e, err := s.Records.GraceStart(ctx)
	if err != nil {
		s.log().Error("grace start failed", "err", err)
		return s.reply(w, buf, m, StatusEREMOTEIO)
	}
	sent, last, err := s.stream(ctx, w, buf, m, e.Recovery)
	if errors.Is(err, errRead) {
		s.log().Error("grace start: reading the recovery epoch failed", "err", err)
		return s.reply(w, buf, m, StatusEREMOTEIO)
	}
	if err != nil {
		return err
	}
	s.log().Info("grace started", "current_epoch", e.Current, "recovery_epoch", e.Recovery, "reclaimable", sent)
	if last != nil {
		putClient(buf, m.Vers, *last)
	}
	return s.reply(w, buf, m, StatusOK)
}

// StreamWriters is how many GraceStart replies are written at once. The
// kernel files each one into a hash table, so their order does not
// matter, and with several in flight the stream is not bound by one
// write's latency.
const StreamWriters = 32

// streamChunk is how many clients are read from the database at a time.
const streamChunk = 2048

// errRead marks a database read failure while streaming.
var errRead = errors.New("read recovery epoch")

// stream writes one -EINPROGRESS reply per client of the epoch, several
// at a time, and returns how many it sent and the last one.
func (s *Server) stream(ctx context.Context, w io.Writer, upcall []byte, m Msg, epoch uint64) (int, *store.CldRecord, error) {
	next := make(chan store.CldRecord, StreamWriters)
	errs := make(chan error, StreamWriters+1)
	var wg sync.WaitGroup
	for range StreamWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := append([]byte(nil), upcall...)
			for r := range next {
				putClient(buf, m.Vers, r)
				if err := s.reply(w, buf, m, StatusEINPROGRESS); err != nil {
					errs <- err
					for range next {
					}
					return
				}
			}
		}()
	}
	sent, last, err := s.feed(ctx, next, epoch)
	close(next)
	wg.Wait()
	errs <- err
	close(errs)
	for e := range errs {
		if e != nil {
			return sent, last, e
		}
	}
	return sent, last, nil
}

// feed reads the epoch in chunks and hands out its non-empty ids.
func (s *Server) feed(ctx context.Context, next chan<- store.CldRecord, epoch uint64) (int, *store.CldRecord, error) {
	var last *store.CldRecord
	sent := 0
	err := s.Records.Reclaimable(ctx, epoch, streamChunk, func(recs []store.CldRecord) error {
		for i := range recs {
			if len(recs[i].ID) > 0 {
				next <- recs[i]
				last = &recs[i]
				sent++
			}
		}
		return nil
	})
	if err != nil {
		return sent, last, fmt.Errorf("%w %d: %w", errRead, epoch, err)
	}
	return sent, last, nil
}

// putClient writes a client's name (and in version 2 its principal hash)
// into a cleared union of the reply buffer, as nfsdcld does (whose final
// reply also carries the last client).
func putClient(buf []byte, vers uint8, r store.CldRecord) {
	clear(buf[offNameLen:])
	putNameLen(buf, len(r.ID))
	copy(buf[offName:], r.ID)
	if vers == Version2 {
		buf[offPrincLen] = uint8(len(r.PrincHash))
		copy(buf[offPrincData:], r.PrincHash)
	}
}
