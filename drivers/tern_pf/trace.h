/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tern PF driver tracepoints: one event per admin command.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM tern_pf

#if !defined(TERN_PF_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define TERN_PF_TRACE_H

#include <linux/pci.h>
#include <linux/tracepoint.h>

TRACE_EVENT(tern_pf_cmd,
	    TP_PROTO(const struct pci_dev *pdev, u8 opcode, u16 vf, u16 tag,
		     u16 status, int err, s64 latency_us),
	    TP_ARGS(pdev, opcode, vf, tag, status, err, latency_us),
	    TP_STRUCT__entry(__string(dev, pci_name(pdev))
			     __field(u8, opcode)
			     __field(u16, vf)
			     __field(u16, tag)
			     __field(u16, status)
			     __field(int, err)
			     __field(s64, latency_us)),
	    TP_fast_assign(__assign_str(dev);
			   __entry->opcode = opcode;
			   __entry->vf = vf;
			   __entry->tag = tag;
			   __entry->status = status;
			   __entry->err = err;
			   __entry->latency_us = latency_us;),
	    TP_printk("%s op=%s vf=%u tag=0x%04x status=0x%02x err=%d latency=%lldus",
		      __get_str(dev), tern_op_name(__entry->opcode),
		      __entry->vf, __entry->tag, __entry->status,
		      __entry->err, __entry->latency_us)
);

#endif /* TERN_PF_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace
#include <trace/define_trace.h>
