/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tern_vfio_pci tracepoints: one event per migration arc, and the data
 * files' background commands: when each ends, and how long read() or
 * write() waited for it.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM tern_vfio_pci

#if !defined(TERN_VFIO_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define TERN_VFIO_TRACE_H

#include <linux/pci.h>
#include <linux/tracepoint.h>

TRACE_EVENT(tern_vfio_arc,
	    TP_PROTO(const struct pci_dev *pdev, u32 from, u32 to, int err,
		     u64 bytes),
	    TP_ARGS(pdev, from, to, err, bytes),
	    TP_STRUCT__entry(__string(dev, pci_name(pdev))
			     __field(u32, from)
			     __field(u32, to)
			     __field(int, err)
			     __field(u64, bytes)),
	    TP_fast_assign(__assign_str(dev);
			   __entry->from = from;
			   __entry->to = to;
			   __entry->err = err;
			   __entry->bytes = bytes;),
	    TP_printk("%s %u -> %u err=%d stream_bytes=%llu",
		      __get_str(dev), __entry->from, __entry->to,
		      __entry->err, __entry->bytes)
);

/* A data file's background SAVE or LOAD ended (in its worker). */
TRACE_EVENT(tern_vfio_xfer,
	    TP_PROTO(const struct pci_dev *pdev, bool save, u64 off, u32 len,
		     int err),
	    TP_ARGS(pdev, save, off, len, err),
	    TP_STRUCT__entry(__string(dev, pci_name(pdev))
			     __field(bool, save)
			     __field(u64, off)
			     __field(u32, len)
			     __field(int, err)),
	    TP_fast_assign(__assign_str(dev);
			   __entry->save = save;
			   __entry->off = off;
			   __entry->len = len;
			   __entry->err = err;),
	    TP_printk("%s %s off=%llu len=%u err=%d", __get_str(dev),
		      __entry->save ? "SAVE" : "LOAD", __entry->off,
		      __entry->len, __entry->err)
);

/* read(), write() or an arc collected a background command. */
TRACE_EVENT(tern_vfio_xfer_wait,
	    TP_PROTO(const struct pci_dev *pdev, bool save, s64 wait_us),
	    TP_ARGS(pdev, save, wait_us),
	    TP_STRUCT__entry(__string(dev, pci_name(pdev))
			     __field(bool, save)
			     __field(s64, wait_us)),
	    TP_fast_assign(__assign_str(dev);
			   __entry->save = save;
			   __entry->wait_us = wait_us;),
	    TP_printk("%s %s waited_us=%lld", __get_str(dev),
		      __entry->save ? "SAVE" : "LOAD", __entry->wait_us)
);

#endif /* TERN_VFIO_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace
#include <trace/define_trace.h>
