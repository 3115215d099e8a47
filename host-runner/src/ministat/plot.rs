//! ministat's ASCII distribution plot: a stack of points per column and, per
//! set (or one shared line), the `|___M___A___|` bar of mean ± one standard
//! deviation, median and mean.
//!
//! The arithmetic (cell = trunc((v - x0) / dx)) and the drawing order copy
//! ministat's exactly, including a quirk: the plot height is that of the
//! *last* set drawn, so taller stacks of earlier sets lose their top rows
//! (and rows are zeroed again when a later set grows them back).

/// Plot symbols: index = OR of the set numbers (1-based) in a cell, so x|+
/// shows as `*`, the same symbol as the third set.
pub const SYMBOLS: [u8; 8] = *b" x+*%#@O";

/// One set as the plot needs it.
pub struct PlotSet<'a> {
    /// Sorted values.
    pub values: &'a [f64],
    pub mean: f64,
    pub median: f64,
    pub stddev: f64,
}

struct Canvas {
    width: usize,
    x0: f64,
    dx: f64,
    /// Rows of `width` cells; row 0 is never drawn.
    data: Vec<u8>,
    height: usize,
    bars: Vec<Option<Vec<u8>>>,
}

impl Canvas {
    /// Cell index as ministat computes it: C's double-to-int truncation.
    fn cell(&self, v: f64) -> i64 {
        ((v - self.x0) / self.dx) as i64
    }

    /// Index into a row if the cell is on the canvas. Off-canvas cells only
    /// happen in ministat's undefined corners (-w 0 or 1), so they are
    /// skipped instead of written out of bounds.
    fn on_canvas(&self, x: i64) -> Option<usize> {
        usize::try_from(x).ok().filter(|&x| x < self.width)
    }
}

/// Renders the plot (borders included) for `sets` at `width` columns.
pub fn render(sets: &[PlotSet<'_>], width: usize, separate_bars: bool) -> String {
    // Range covers every point and every mean ± stddev (NaN bounds are
    // ignored, as C's comparisons ignore them).
    let (mut min, mut max) = (999e99_f64, -999e99_f64);
    for set in sets {
        let bounds = [
            set.values[0],
            set.values[set.values.len() - 1],
            set.mean - set.stddev,
            set.mean + set.stddev,
        ];
        for v in bounds {
            if v < min {
                min = v;
            }
            if v > max {
                max = v;
            }
        }
    }
    let span = max - min;
    if span == 0.0 {
        return "[no plot, span is zero width]\n".to_string();
    }
    let dx = span / (width as f64 - 1.0);
    let mut canvas = Canvas {
        width,
        x0: min - 0.5 * dx,
        dx,
        data: Vec::new(),
        height: 0,
        bars: vec![None; sets.len()],
    };
    for (index, set) in sets.iter().enumerate() {
        draw_set(&mut canvas, set, index, separate_bars);
    }
    dump(&canvas)
}

fn draw_set(canvas: &mut Canvas, set: &PlotSet<'_>, index: usize, separate_bars: bool) {
    let symbol = index as u8 + 1;
    // Runs of equal cells in the sorted values give the stack heights; the
    // tallest stack plus one (row 0) is this set's height.
    let mut tallest = 1;
    let mut last = -1;
    let mut run = 0;
    for &v in set.values {
        let x = canvas.cell(v);
        if x == last {
            run += 1;
            tallest = tallest.max(run);
        } else {
            run = 1;
            last = x;
        }
    }
    let height = tallest + 1;
    if height > canvas.height {
        let old_rows = canvas.height * canvas.width;
        canvas
            .data
            .resize(canvas.data.len().max(height * canvas.width), 0);
        canvas.data[old_rows..height * canvas.width].fill(0);
    }
    canvas.height = height;
    // `run` carries over like ministat's `j`; the first point resets it.
    let mut last = -1;
    for &v in set.values {
        let x = canvas.cell(v);
        if x == last {
            run += 1;
        } else {
            run = 1;
            last = x;
        }
        if let Some(col) = canvas.on_canvas(x) {
            canvas.data[run * canvas.width + col] |= symbol;
        }
    }

    let bar_index = if separate_bars { index } else { 0 };
    let mut bar = canvas.bars[bar_index]
        .take()
        .unwrap_or_else(|| vec![0; canvas.width]);
    if !set.stddev.is_nan() {
        let left = canvas.cell(set.mean - set.stddev);
        let right = canvas.cell(set.mean + set.stddev);
        mark(canvas, &mut bar, right, b'|');
        mark(canvas, &mut bar, left, b'|');
        for x in left + 1..right {
            if let Some(col) = canvas.on_canvas(x) {
                if bar[col] == 0 {
                    bar[col] = b'_';
                }
            }
        }
    }
    mark(canvas, &mut bar, canvas.cell(set.median), b'M');
    mark(canvas, &mut bar, canvas.cell(set.mean), b'A');
    canvas.bars[bar_index] = Some(bar);
}

fn mark(canvas: &Canvas, bar: &mut [u8], x: i64, c: u8) {
    if let Some(col) = canvas.on_canvas(x) {
        bar[col] = c;
    }
}

fn dump(canvas: &Canvas) -> String {
    let border = format!("+{}+\n", "-".repeat(canvas.width));
    let mut out = border.clone();
    for row in (1..canvas.height).rev() {
        let cells = &canvas.data[row * canvas.width..(row + 1) * canvas.width];
        out.push('|');
        out.extend(cells.iter().map(|&k| SYMBOLS[usize::from(k & 7)] as char));
        out.push_str("|\n");
    }
    for bar in canvas.bars.iter().flatten() {
        out.push('|');
        out.extend(bar.iter().map(|&c| if c == 0 { ' ' } else { c as char }));
        out.push_str("|\n");
    }
    out.push_str(&border);
    out
}
