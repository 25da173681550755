//! Drawing with plotters into an RGB buffer and encoding the PNG (embedded font).

use super::*;

pub(super) type Root<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// A trace sample: t_ms, r_hz, v.
pub(super) type Point = (f64, f64, f64);

/// A run's legend label and its trace.
pub(super) type Line<'a> = (String, &'a [Point]);

pub(super) fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The embedded font is a valid TrueType file (the tests draw text with it).
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

/// Draws with `draw` into an RGB buffer of `width` x `height` and encodes it as PNG.
pub(super) fn render(
    out: &Path,
    width: u32,
    height: u32,
    draw: impl FnOnce(&Root) -> Result<(), String>,
) -> Result<Vec<u8>, PlotError> {
    register_font();
    let fail = |why: String| PlotError::Render {
        path: out.to_path_buf(),
        why,
    };
    let mut buf = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        draw(&root).map_err(fail)?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    let mut png_bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png_bytes, width, height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(|e| fail(e.to_string()))?;
        w.write_image_data(&buf).map_err(|e| fail(e.to_string()))?;
        w.finish().map_err(|e| fail(e.to_string()))?;
    }
    Ok(png_bytes)
}

pub(super) fn err<E: std::error::Error>(e: E) -> String {
    e.to_string()
}

/// A short label for a number: up to 4 decimals, trailing zeros dropped; exponent form
/// for very large and very small magnitudes.
pub fn fmt_value(v: f64) -> String {
    if v.is_nan() {
        return "null".into();
    }
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e6).contains(&a) {
        let s = format!("{v:.3e}");
        let (m, e) = s.split_once('e').expect("exponent form");
        let m = m.trim_end_matches('0').trim_end_matches('.');
        return format!("{m}e{e}");
    }
    let digits = if a >= 100.0 { 2 } else { 4 };
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" { "0".into() } else { s }
}

/// Matplotlib's viridis, 9 stops, interpolated linearly.
pub(super) fn viridis(t: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 9] = [
        (68, 1, 84),
        (72, 40, 120),
        (62, 73, 137),
        (49, 104, 142),
        (38, 130, 142),
        (31, 158, 137),
        (53, 183, 121),
        (110, 206, 88),
        (253, 231, 37),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |p: u8, q: u8| (p as f64 + f * (q as f64 - p as f64)).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// The colour bar's range: the data's, widened when all values are equal.
pub(super) fn bar_range((lo, hi): (f64, f64)) -> (f64, f64) {
    if hi > lo {
        (lo, hi)
    } else {
        let h = if lo == 0.0 { 0.5 } else { 0.05 * lo.abs() };
        (lo - h, hi + h)
    }
}

pub(super) fn font(size: u32) -> TextStyle<'static> {
    (FAMILY, size).into_font().into()
}

pub(super) const MARGIN: u32 = 12;
pub(super) const X_LABEL_AREA: u32 = 60;
pub(super) const Y_LABEL_AREA: u32 = 80;
pub(super) const BAR_WIDTH: u32 = 170;

pub(super) fn draw_heatmap(
    root: &Root,
    s: &PlotSummary,
    (x_name, y_name): (&str, &str),
    bar_label: &str,
    scale: (f64, f64),
) -> Result<(), String> {
    root.fill(&WHITE).map_err(err)?;
    let area = root.titled(&s.title, font(22).color(&BLACK)).map_err(err)?;
    let (w, _) = area.dim_in_pixel();
    let (main, bar) = area.split_horizontally(w.saturating_sub(BAR_WIDTH));
    let (xscale, xe) = edges(&s.x_values);
    let (yscale, ye) = edges(&s.y_values);
    let xr = xe[0]..xe[xe.len() - 1];
    let yr = ye[0]..ye[ye.len() - 1];
    let cells = Cells {
        s,
        xe: &xe,
        ye: &ye,
        range: scale,
    };
    let names = (x_name, y_name);
    match (xscale, yscale) {
        (Scale::Linear, Scale::Linear) => cells.draw(&main, xr, yr, names)?,
        (Scale::Log, Scale::Linear) => cells.draw(&main, xr.log_scale(), yr, names)?,
        (Scale::Linear, Scale::Log) => cells.draw(&main, xr, yr.log_scale(), names)?,
        (Scale::Log, Scale::Log) => cells.draw(&main, xr.log_scale(), yr.log_scale(), names)?,
    }
    draw_colorbar(
        &bar,
        cells.range,
        bar_label,
        s.values.iter().any(|v| v.is_nan()),
    )
}

pub(super) struct Cells<'a> {
    pub(super) s: &'a PlotSummary,
    pub(super) xe: &'a [f64],
    pub(super) ye: &'a [f64],
    pub(super) range: (f64, f64),
}

impl Cells<'_> {
    pub(super) fn draw<XR, YR>(
        &self,
        area: &Root,
        xr: XR,
        yr: YR,
        (x_name, y_name): (&str, &str),
    ) -> Result<(), String>
    where
        XR: AsRangedCoord<Value = f64>,
        YR: AsRangedCoord<Value = f64>,
        XR::CoordDescType: ValueFormatter<f64>,
        YR::CoordDescType: ValueFormatter<f64>,
    {
        let mut chart = ChartBuilder::on(area)
            .margin(MARGIN)
            .x_label_area_size(X_LABEL_AREA)
            .y_label_area_size(Y_LABEL_AREA)
            .build_cartesian_2d(xr, yr)
            .map_err(err)?;
        let nx = self.s.x_values.len();
        let (lo, hi) = self.range;
        let rects = self.s.values.iter().enumerate().map(|(k, &v)| {
            let (ix, iy) = (k % nx, k / nx);
            let color = if v.is_nan() {
                NO_DATA
            } else {
                viridis((v - lo) / (hi - lo))
            };
            Rectangle::new(
                [
                    (self.xe[ix], self.ye[iy]),
                    (self.xe[ix + 1], self.ye[iy + 1]),
                ],
                color.filled(),
            )
        });
        chart.draw_series(rects).map_err(err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .set_all_tick_mark_size(6)
            .x_desc(x_name)
            .y_desc(y_name)
            .axis_desc_style(font(20))
            .label_style(font(15))
            .x_label_formatter(&|v| fmt_value(*v))
            .y_label_formatter(&|v| fmt_value(*v))
            .draw()
            .map_err(err)?;
        Ok(())
    }
}

pub(super) fn draw_colorbar(
    area: &Root,
    (lo, hi): (f64, f64),
    label: &str,
    no_data: bool,
) -> Result<(), String> {
    let mut chart = ChartBuilder::on(area)
        .margin_top(MARGIN)
        .margin_bottom(MARGIN + X_LABEL_AREA)
        .margin_left(10)
        .margin_right(MARGIN)
        .set_label_area_size(LabelAreaPosition::Right, 110)
        .build_cartesian_2d(0.0..1.0, lo..hi)
        .map_err(err)?;
    const STEPS: usize = 256;
    let step = (hi - lo) / STEPS as f64;
    chart
        .draw_series((0..STEPS).map(|k| {
            let y0 = lo + k as f64 * step;
            Rectangle::new(
                [(0.0, y0), (1.0, y0 + step)],
                viridis((k as f64 + 0.5) / STEPS as f64).filled(),
            )
        }))
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .set_all_tick_mark_size(6)
        .disable_x_axis()
        .y_desc(label)
        .axis_desc_style(font(18))
        .label_style(font(15))
        .y_label_formatter(&|v| fmt_value(*v))
        .draw()
        .map_err(err)?;
    if no_data {
        let (_, h) = area.dim_in_pixel();
        let y = (h - X_LABEL_AREA + 10) as i32;
        area.draw(&Rectangle::new([(12, y), (30, y + 18)], NO_DATA.filled()))
            .map_err(err)?;
        area.draw(&Text::new("no value", (36, y + 1), font(15)))
            .map_err(err)?;
    }
    Ok(())
}

pub(super) fn draw_traces(root: &Root, title: &str, lines: &[Line]) -> Result<(), String> {
    root.fill(&WHITE).map_err(err)?;
    let area = root.titled(title, font(22).color(&BLACK)).map_err(err)?;
    let panels = area.split_evenly((2, 1));
    let t_range = lines
        .iter()
        .flat_map(|(_, s)| s.iter().map(|p| p.0))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), t| {
            (a.min(t), b.max(t))
        });
    let t_range = bar_range(t_range);
    for (panel, (var, pick)) in panels.iter().zip([
        ("r_hz (Hz)", (|p: &Point| p.1) as fn(&Point) -> f64),
        ("v", |p: &Point| p.2),
    ]) {
        let (lo, hi) = lines
            .iter()
            .flat_map(|(_, s)| s.iter().map(pick))
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
        let (lo, hi) = if lo.is_finite() {
            bar_range((lo, hi))
        } else {
            (-1.0, 1.0)
        };
        let pad = 0.05 * (hi - lo);
        let mut chart = ChartBuilder::on(panel)
            .margin(MARGIN)
            .x_label_area_size(50)
            .y_label_area_size(Y_LABEL_AREA)
            .build_cartesian_2d(t_range.0..t_range.1, (lo - pad)..(hi + pad))
            .map_err(err)?;
        chart
            .configure_mesh()
            .max_light_lines(1)
            .light_line_style(RGBColor(235, 235, 235))
            .bold_line_style(RGBColor(215, 215, 215))
            .x_desc("t (ms)")
            .y_desc(var)
            .axis_desc_style(font(18))
            .label_style(font(15))
            .x_label_formatter(&|v| fmt_value(*v))
            .y_label_formatter(&|v| fmt_value(*v))
            .draw()
            .map_err(err)?;
        for (k, (label, series)) in lines.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(
                    series.iter().map(|p| (p.0, pick(p))),
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        if var == "r_hz (Hz)" {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(160, 160, 160))
                .label_font(font(14))
                .draw()
                .map_err(err)?;
        }
    }
    Ok(())
}
