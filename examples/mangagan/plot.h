/* plot.h — mangagan's training plot (plot.c) */
#ifndef MANGAGAN_PLOT_H
#define MANGAGAN_PLOT_H

/* Draws log.csv (csv) into png: losses, mean D outputs and the SWD over the steps. 0 on
 * success, -1 when the log cannot be read or the PNG written (the library's message is set for
 * the latter). */
int plot_log(const char *csv, const char *png);

#endif
