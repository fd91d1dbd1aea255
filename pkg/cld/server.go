package cld

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"nfsrecover/pkg/store"
)

// UpcallVersion is the highest message version this server speaks; it is
// the GetVersion answer.
const UpcallVersion = Version2

// Committer applies a change durably: Do returns nil only once the change
// is on stable storage. View reads. store.Committer is one.
type Committer interface {
	Do(ctx context.Context, apply func(*store.Tx) error) error
	View(fn func(*store.Tx) error) error
}

// Server answers the kernel's upcalls from the nfsrecover database, as
// nfsdcld does from its SQLite file. It is safe for concurrent use: the
// kernel has several upcalls outstanding when several nfsd threads call,
// and their changes commit together.
type Server struct {
	DB  Committer
	Log *slog.Logger
	// EndGraceFile, when set, is read before each Create and Remove while
	// no grace period is recorded: "N" means nfsd is in grace without
	// having said so, and a grace period is started first. Kernels before
	// 4.20 send no GraceStart (nfsdcld does the same there); set it to
	// /proc/fs/nfsd/v4_end_grace on them, leave it empty otherwise.
	EndGraceFile string
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
		rec := store.CldRecord{ID: m.Name, PrincHash: m.PrincHash}
		err = s.DB.Do(ctx, func(tx *store.Tx) error {
			if err := s.oldKernelGrace(tx); err != nil {
				return err
			}
			return tx.CldCreate(rec)
		})
		return s.reply(w, buf, m, s.statusOr(err, StatusEREMOTEIO, "create"))
	case Remove:
		err = s.DB.Do(ctx, func(tx *store.Tx) error {
			if err := s.oldKernelGrace(tx); err != nil {
				return err
			}
			return tx.CldRemove(m.Name)
		})
		return s.reply(w, buf, m, s.statusOr(err, StatusEREMOTEIO, "remove"))
	case Check:
		return s.check(ctx, w, buf, m)
	case GraceDone:
		err = s.DB.Do(ctx, func(tx *store.Tx) error { _, err := tx.CldGraceDone(); return err })
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

// oldKernelGrace starts a grace period when an old kernel is in grace
// without having sent GraceStart (see EndGraceFile). An unreadable file
// fails the change, as in nfsdcld.
func (s *Server) oldKernelGrace(tx *store.Tx) error {
	if s.EndGraceFile == "" {
		return nil
	}
	e, ok, err := tx.CldEpochs()
	if err != nil || !ok || e.Recovery != 0 {
		return err
	}
	b, err := os.ReadFile(s.EndGraceFile)
	if err != nil {
		return fmt.Errorf("old kernel: %w", err)
	}
	if len(b) > 0 && b[0] == 'N' {
		s.log().Warn("nfsd is in grace but sent no GraceStart (kernel before 4.20): starting one")
		_, err = tx.CldGraceStart()
	}
	return err
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
	var found bool
	err := s.DB.Do(ctx, func(tx *store.Tx) error {
		var err error
		found, err = tx.CldCheck(m.Name)
		return err
	})
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
	var e store.Epochs
	err := s.DB.Do(ctx, func(tx *store.Tx) error {
		var err error
		e, err = tx.CldGraceStart()
		return err
	})
	if err != nil {
		s.log().Error("grace start failed", "err", err)
		return s.reply(w, buf, m, StatusEREMOTEIO)
	}
	sent, last, err := s.stream(w, buf, m, e.Recovery)
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
func (s *Server) stream(w io.Writer, upcall []byte, m Msg, epoch uint64) (int, *store.CldRecord, error) {
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
	sent, last, err := s.feed(next, epoch)
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
func (s *Server) feed(next chan<- store.CldRecord, epoch uint64) (int, *store.CldRecord, error) {
	var pos uint64
	var last *store.CldRecord
	sent := 0
	for {
		var recs []store.CldRecord
		err := s.DB.View(func(tx *store.Tx) error {
			var err error
			recs, pos, err = tx.CldRecordsAfter(epoch, pos, streamChunk)
			return err
		})
		if err != nil {
			return sent, last, fmt.Errorf("%w %d: %w", errRead, epoch, err)
		}
		for i := range recs {
			if len(recs[i].ID) > 0 {
				next <- recs[i]
				last = &recs[i]
				sent++
			}
		}
		if len(recs) < streamChunk {
			return sent, last, nil
		}
	}
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
