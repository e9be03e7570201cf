package partition

import "path/filepath"

// RecoveryBytesDropped is how many bytes recovery cut off this log when Open ran: the sizes of
// the files of cut-off bytes it made (torn or corrupt tails, segments moved aside after a cut),
// as they are now; 0, without touching the disk, when it cut nothing. Any goroutine: Open is the
// only writer of that list.
func (l *Log) RecoveryBytesDropped() int64 {
	var n int64
	for _, name := range l.droppedThisOpen {
		if fi, err := l.fs.Stat(filepath.Join(l.dir, name)); err == nil {
			n += fi.Size()
		}
	}
	return n
}
