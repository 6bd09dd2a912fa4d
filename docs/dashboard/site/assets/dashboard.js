
(function () {
  const data = window.TRAINGUARD;
  const open = (id) => { window.location.href = 'nights/' + id + '/index.html'; };
  for (const group of data.groups) {
    for (const [cell, s] of Object.entries(group.cells)) {
      const el = document.getElementById(group.key + '-' + cell);
      if (!el) continue;
      const traces = [];
      if (s.low.some((v) => v !== null)) {
        traces.push({x: group.x, y: s.low, mode: 'lines', line: {width: 0}, hoverinfo: 'skip', showlegend: false, connectgaps: true});
        traces.push({x: group.x, y: s.high, mode: 'lines', line: {width: 0}, fill: 'tonexty', fillcolor: 'rgba(36,113,163,0.15)',
                     name: 'baseline band', hoverinfo: 'skip', connectgaps: true});
      }
      traces.push({x: group.x, y: s.values, mode: 'lines+markers', name: group.metric_label,
                   customdata: group.nights.map((n) => n.id),
                   text: group.nights.map((n, i) => n.time + '<br>' + n.commit + ' · ' + n.result),
                   hovertemplate: '%{text}<br>' + group.metric_label + ' %{y:.4f}<extra></extra>',
                   marker: {size: 9, color: group.nights.map((n) => n.result === 'PASS' ? data.colors.pass : data.colors.fail),
                            symbol: group.nights.map((n) => n.result === 'PASS' ? 'circle' : 'x')},
                   line: {color: '#7f8c8d'}});
      Plotly.newPlot(el, traces, {title: {text: cell, font: {size: 14}}, margin: {l: 60, r: 10, t: 36, b: 48},
                                  xaxis: {title: {text: 'night'}}, yaxis: {title: {text: group.metric_label}}, showlegend: false},
                     {displaylogo: false, responsive: true});
      el.on('plotly_click', (event) => { const p = event.points.find((q) => q.customdata !== undefined); if (p) open(p.customdata); });
    }
    for (const [what, label] of [['epoch_seconds', 'seconds per epoch'], ['peak_memory_mb', 'peak memory (MiB)']]) {
      const el = document.getElementById(group.key + '-' + what);
      if (!el) continue;
      const traces = Object.entries(group.speed).map(([model, s]) => ({x: group.x, y: s[what], mode: 'lines+markers', name: model,
                     customdata: group.nights.map((n) => n.id), connectgaps: false}));
      Plotly.newPlot(el, traces, {title: {text: label, font: {size: 14}}, margin: {l: 60, r: 10, t: 36, b: 48},
                                  xaxis: {title: {text: 'night'}}}, {displaylogo: false, responsive: true});
      el.on('plotly_click', (event) => open(event.points[0].customdata));
    }
  }
  for (const row of document.querySelectorAll('tr.night')) {
    row.addEventListener('click', () => open(row.dataset.night));
  }
})();
