"""CMAF (fragmented ISO-BMFF) writing and reading.

One track per CMAF header; fragments are ``[styp] [prft] moof mdat``.
Everything goes through one byte buffer type, :class:`Buffer`, with paired
``push_<box>`` / ``pull_<box>`` functions in :mod:`llhls.cmaf.boxes`.
"""

from llhls.cmaf.boxes import FileType, ProducerReferenceTime, ntp_to_unix_us, unix_us_to_ntp
from llhls.cmaf.buffer import Buffer
from llhls.cmaf.reader import Box, BoxReader, Fragment, parse_boxes, read_fragment, read_init
from llhls.cmaf.writer import HEADER_FILE_TYPE, SEGMENT_FILE_TYPE, fragment, init_segment

__all__ = [
    "Buffer",
    "Box",
    "BoxReader",
    "FileType",
    "Fragment",
    "ProducerReferenceTime",
    "HEADER_FILE_TYPE",
    "SEGMENT_FILE_TYPE",
    "init_segment",
    "fragment",
    "parse_boxes",
    "read_init",
    "read_fragment",
    "unix_us_to_ntp",
    "ntp_to_unix_us",
]
