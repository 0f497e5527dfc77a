"""Rendering, generic and knowing no chapter: static figures (:mod:`calcas.render.plots`),
kernel-free explorers drawn from precomputed grids (:mod:`calcas.render.interactive`), table
styling and the in-notebook display of prose (:mod:`calcas.render.tables`), and the offline
book build (:mod:`calcas.render.book`). Chapters (:mod:`calcas.chapters`) call it; it calls no
chapter."""
