"""Pure core: no I/O, no clock, no framework; bytes and values in, values out."""
