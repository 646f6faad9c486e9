package geo

import (
	"context"
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
	id := fileID{size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.ino = st.Ino
	}
	return id, nil
}

// Watch polls path every interval and, when the file has been replaced or
// changed, opens it and passes the new database to onChange. A file that
// does not open (truncated, corrupt, half written) is logged and skipped:
// the database in use stays. Watch returns when ctx is done.
func Watch(ctx context.Context, path string, interval time.Duration, onChange func(*DB), logger *slog.Logger) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	last, _ := statID(path)
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
			continue
		}
		logger.Info("GeoIP database reloaded", "path", path, "locations", db.Len())
		onChange(db)
	}
}
