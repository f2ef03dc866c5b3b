# fs: cairnfs, the FUSE client (libfuse3, lmdb)
