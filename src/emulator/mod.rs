//! A local stand-in for Feishu ACS and VziCloud FRS, strict as the vendors' docs read.
