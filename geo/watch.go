package geo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"syscall"
	"time"
)

// fileID identifies a version of a file: tools such as geoipupdate write
// a new file and rename it into place, which changes the inode.
type fileID struct {
	ino   uint64
	size  int64
	mtime time.Time
}

func statID(path string) (fileID, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileID{}, err
	}
	return idOf(fi), nil
}

func idOf(fi os.FileInfo) fileID {
	id := fileID{size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.ino = st.Ino
	}
	return id
}

// readFile reads path and returns the identity of the very file read (not
// of whatever the name points to a moment later).
func readFile(path string) ([]byte, fileID, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fileID{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fileID{}, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fileID{}, fmt.Errorf("read %s: %w", path, err)
	}
	return data, idOf(fi), nil
}

// Watch polls path every interval and, when the file differs from the one
// current was read from (nil: from whatever is there when Watch starts),
// opens it and passes the new database to onChange. Comparing with the
// file actually read means a replacement between Open and Watch is not
// missed. A file that does not open (truncated, corrupt, half written) is
// logged and passed to onChange as an error, with a nil database: the one
// in use stays. Watch returns when ctx is done.
func Watch(ctx context.Context, path string, interval time.Duration, current *DB, onChange func(*DB, error), logger *slog.Logger) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var last fileID
	if current != nil {
		last = current.id
	} else {
		last, _ = statID(path)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		id, err := statID(path)
		if err != nil || id == last {
			continue
		}
		last = id
		db, err := Open(path)
		if err != nil {
			logger.Error("GeoIP database not reloaded, keeping the one in use", "path", path, "err", err)
			onChange(nil, err)
			continue
		}
		logger.Info("GeoIP database reloaded", "path", path, "locations", db.Len())
		onChange(db, nil)
	}
}
