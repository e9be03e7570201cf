package core

import (
	"errors"
	"time"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/log/partition"
)

// budgetRetryInterval is how often a fetch that the broker-wide budget left short reads again.
const budgetRetryInterval = 50 * time.Millisecond

// WaitForData is the fetch purgatory shared by both protocols. It calls read until read reports
// that the fetch can be answered (enough bytes, or an error); between calls it sleeps until a
// high watermark of one of replicas moves or the deadline passes. At the deadline it calls read
// one last time with last=true. replicas may hold nils (unknown partitions). canceled stops the
// wait early (the connection closed).
//
// starved, when it reports true after a read, says the read came up short for want of memory
// (the broker-wide budget): the wait then also ends after budgetRetryInterval, to read again as
// soon as other connections have given memory back.
//
// One Waiter is registered with every replica involved, after the first read; the high
// watermarks are taken before that read and checked again after registering, so an advance
// between the read and the registration is not missed.
func WaitForData(replicas []*cluster.Replica, deadline time.Time, now func() time.Time, canceled func() bool, starved func() bool,
	read func(last bool) (done bool)) {
	// The high watermarks are taken before the first read: one that moves after the read looked,
	// but before the waiter is registered, then shows as grown instead of being missed (which
	// would leave the fetch waiting for its whole max wait with data there).
	seen := make([]int64, len(replicas))
	for i, r := range replicas {
		if r != nil {
			seen[i] = r.HighWatermark()
		}
	}
	if read(false) || canceled() {
		return
	}
	if !now().Before(deadline) {
		read(true)
		return
	}
	waiter := cluster.NewWaiter()
	for _, r := range replicas {
		if r != nil {
			r.AddWaiter(waiter)
		}
	}
	defer func() {
		for _, r := range replicas {
			if r != nil {
				r.RemoveWaiter(waiter)
			}
		}
	}()
	timer := time.NewTimer(deadline.Sub(now()))
	defer timer.Stop()
	grew := func() bool {
		for i, r := range replicas {
			if r != nil && r.HighWatermark() != seen[i] {
				return true
			}
		}
		return false
	}
	var retry *time.Timer
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	for {
		if !grew() {
			var retryC <-chan time.Time
			if starved() {
				if retry == nil {
					retry = time.NewTimer(budgetRetryInterval)
				} else {
					retry.Reset(budgetRetryInterval)
				}
				retryC = retry.C
			}
			select {
			case <-waiter.C:
			case <-retryC:
			case <-timer.C:
				read(true)
				return
			}
		}
		for i, r := range replicas {
			if r != nil {
				seen[i] = r.HighWatermark()
			}
		}
		if read(false) || canceled() {
			return
		}
		if !now().Before(deadline) {
			read(true)
			return
		}
	}
}

// PartitionRead is one partition's part of a fetch response, for either protocol: an error, the
// partition's watermarks, and where its records sit in the response's data buffer.
type PartitionRead struct {
	Code          errcode.Code
	Message       string
	HighWatermark int64
	LogStart      int64
	DataStart     int // records are data[DataStart:DataEnd]
	DataEnd       int
	HasRecords    bool
}

// ReadPartition reads replica r (nil: unknown partition) from offset for a fetch: whole committed
// batches appended to data, at most limit bytes, except that the first batch of a response
// (first=true) comes whole even when larger (KIP-74), so a consumer always progresses.
func ReadPartition(r *cluster.Replica, data []byte, offset int64, limit int, first bool) ([]byte, PartitionRead) {
	res := PartitionRead{HighWatermark: -1, LogStart: -1}
	if r == nil {
		res.Code, res.Message = errcode.UnknownTopicOrPartition, ErrUnknownPartition.Message
		return data, res
	}
	res.HighWatermark = r.HighWatermark()
	res.LogStart = r.LogStartOffset()
	if err := r.Fenced(); err != nil && offset >= res.HighWatermark {
		// Caught up with a partition that takes no more writes: say why nothing will come.
		res.Code, res.Message = errcode.KafkaStorageError, err.Error()
		return data, res
	}
	if offset < res.LogStart || (offset > res.HighWatermark && offset > r.LogEndOffset()) {
		res.Code = errcode.OffsetOutOfRange
		res.Message = "fetch offset " + itoa(offset) + " is outside the log (log start " + itoa(res.LogStart) + ", high watermark " + itoa(res.HighWatermark) + ")"
		return data, res
	}
	if offset >= res.HighWatermark || limit <= 0 {
		// Between the high watermark and the log end: written, not committed yet (a new
		// leader's high watermark catches up once its followers report), as in Kafka.
		return data, res
	}
	start := len(data)
	out, err := r.Read(data, offset, limit, first)
	if err != nil {
		res.Code, res.Message = errcode.KafkaStorageError, err.Error()
		if errors.Is(err, partition.ErrOffsetOutOfRange) {
			res.Code = errcode.OffsetOutOfRange
		}
		return data, res
	}
	// Never serve a corrupt batch: a byte flipped on disk after recovery checked the segment
	// (in an older segment, which start-up trusts) stops the read before that batch. CRC-32C
	// runs at tens of GB/s, a small price next to the read itself.
	good, bad := verifiedPrefix(out[start:])
	if bad != nil {
		r.ReportCorruption(offset, bad)
		if good == 0 {
			res.Code, res.Message = errcode.KafkaStorageError, "stored batch is corrupt: "+bad.Error()
			return data, res
		}
		out = out[:start+good]
	}
	res.DataStart, res.DataEnd, res.HasRecords = start, len(out), true
	return out, res
}

// verifiedPrefix returns how many leading bytes of b are whole batches that pass validation, and
// the error of the first one that does not.
func verifiedPrefix(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		size, err := batch.Size(b[n:])
		if err == nil && size > len(b)-n {
			err = batch.ErrShort
		}
		if err == nil {
			_, err = batch.ValidateStored(b[n : n+size])
		}
		if err != nil {
			return n, err
		}
		n += size
	}
	return n, nil
}
