// The 2-D face of face_common/render.py drawn on a canvas from the 61 ARKit channels
// (wire order), so the page renders both faces itself from the numbers it receives.
'use strict';
const FACE_COLORS = { human: '#e8c6b0', robot: '#d2ccc4', ink: '#302828', lip: '#963c3c',
                      mouth: '#5a2832', tongue: '#d25a5a' };

function drawFace(ctx, names, values, style) {
  const size = ctx.canvas.width, s = size / 320;
  const index = drawFace.index || (drawFace.index = Object.fromEntries(
    names.map((n, i) => [n.toLowerCase(), i])));
  const v = (name) => { const x = values ? values[index[name.toLowerCase()]] : 0; return Number.isFinite(x) ? x : 0; };
  const clip = (x, a, b) => Math.min(b, Math.max(a, x));
  ctx.fillStyle = '#f5f5f5'; ctx.fillRect(0, 0, size, size);
  if (!values) { ctx.fillStyle = '#999'; ctx.font = `${14 * s}px sans-serif`; ctx.fillText('no frames yet', 100 * s, 160 * s); return; }
  const yaw = v('HeadYaw'), pitch = v('HeadPitch'), roll = v('HeadRoll');
  const cx = size / 2 + 90 * s * Math.sin(yaw), cy = size / 2 + 10 * s - 70 * s * Math.sin(pitch);
  const c = Math.cos(roll), si = Math.sin(roll);
  const p = (x, y) => [cx + (x * c - y * si) * s, cy + (x * si + y * c) * s];
  const ellipse = (x, y, rx, ry, fill, stroke, width, from = 0, to = 2 * Math.PI) => {
    const [px, py] = p(x, y); ctx.beginPath(); ctx.ellipse(px, py, Math.max(0.5, rx * s), Math.max(0.5, ry * s), roll, from, to);
    if (fill) { ctx.fillStyle = fill; ctx.fill(); }
    if (stroke) { ctx.strokeStyle = stroke; ctx.lineWidth = width; ctx.stroke(); }
  };
  const line = (pts, color, width, close = false, fill = null) => {
    ctx.beginPath(); pts.forEach(([x, y], i) => { const [px, py] = p(x, y); i ? ctx.lineTo(px, py) : ctx.moveTo(px, py); });
    if (close) ctx.closePath();
    if (fill) { ctx.fillStyle = fill; ctx.fill(); }
    ctx.strokeStyle = color; ctx.lineWidth = width; ctx.lineCap = 'round'; ctx.lineJoin = 'round'; ctx.stroke();
  };
  const puff = v('CheekPuff');
  ellipse(0, 0, 105 + 14 * puff, 138, FACE_COLORS[style], FACE_COLORS.ink, 2);
  if (style === 'robot') { line([[-60, -120], [-75, 100]], '#b6b0aa', 1); line([[60, -120], [75, 100]], '#b6b0aa', 1); }
  for (const [side, sign] of [['Left', -1], ['Right', 1]]) {
    const ex = 42 * sign, ey = -30;
    const inner = v('BrowInnerUp'), down = v(`BrowDown${side}`), outer = v(`BrowOuterUp${side}`);
    line([[ex - 22 * sign, ey - 28 - 16 * inner + 10 * down], [ex, ey - 34 - 8 * inner - 6 * outer + 8 * down],
          [ex + 24 * sign, ey - 26 - 16 * outer + 4 * down]], FACE_COLORS.ink, Math.max(2, 4 * s));
    const open = clip(1 - v(`EyeBlink${side}`) + 0.5 * v(`EyeWide${side}`) - 0.35 * v(`EyeSquint${side}`), 0.05, 1.5);
    ellipse(ex, ey, 20, 11 * open, '#fff', null);
    let lookX = (v(`EyeLookOut${side}`) - v(`EyeLookIn${side}`)) * sign + Math.sin(v(`${side}EyeYaw`)) * 1.5;
    let lookY = v(`EyeLookDown${side}`) - v(`EyeLookUp${side}`) - Math.sin(v(`${side}EyePitch`)) * 1.5;
    if (open > 0.15) ellipse(ex + 11 * clip(lookX, -1, 1), ey + 6 * clip(lookY, -1, 1) * open, 6 * Math.min(1, open), 6 * Math.min(1, open), FACE_COLORS.ink, null);
    ellipse(ex, ey, 20, 11 * open, null, FACE_COLORS.ink, 2);
    const cheek = v(`CheekSquint${side}`);
    if (cheek > 0.05) ellipse(ex + 6 * sign, ey + 26, 16, 6, null, FACE_COLORS.ink, 1 + 2 * cheek, Math.PI * 200 / 180, Math.PI * 340 / 180);
    const sneer = v(`NoseSneer${side}`);
    for (let k = 0; sneer > 0.05 && k < 1 + Math.floor(3 * sneer); k++) line([[10 * sign, -8 + 5 * k], [20 * sign, -12 + 5 * k]], FACE_COLORS.ink, 1);
  }
  line([[0, -15], [-9, 22], [9, 22]], FACE_COLORS.ink, 2);
  const jaw = v('JawOpen');
  const shift = 14 * (v('MouthRight') - v('MouthLeft')) + 10 * (v('JawRight') - v('JawLeft'));
  const pucker = Math.max(v('MouthPucker'), v('MouthFunnel'));
  const mouthY = 62 + 6 * v('JawForward');
  const corners = [['Left', -1], ['Right', 1]].map(([side, sign]) => {
    const smile = v(`MouthSmile${side}`), frown = v(`MouthFrown${side}`);
    const half = 36 + 10 * v(`MouthStretch${side}`) + 8 * smile + 4 * v(`MouthDimple${side}`) - 16 * pucker;
    return [shift + sign * half, mouthY - 14 * smile + 12 * frown + 4 * jaw];
  });
  const upperUp = 0.5 * (v('MouthUpperUpLeft') + v('MouthUpperUpRight'));
  const lowerDown = 0.5 * (v('MouthLowerDownLeft') + v('MouthLowerDownRight'));
  const gap = clip(40 * jaw + 10 * lowerDown + 6 * upperUp - 30 * v('MouthClose'), 0, 60) + 10 * v('MouthFunnel');
  const upperY = mouthY - 6 * upperUp - 3 * v('MouthShrugUpper') + 2 * v('MouthRollUpper');
  const lowerY = mouthY + gap - 3 * v('MouthRollLower') - 4 * v('MouthShrugLower');
  const [[lx, ly], [rx, ry]] = corners;
  const top = [[lx, ly], [shift - 12, upperY - 3], [shift, upperY], [shift + 12, upperY - 3], [rx, ry]];
  const bottom = [[rx, ry], [shift + 14, lowerY], [shift, lowerY + 2], [shift - 14, lowerY], [lx, ly]];
  if (gap > 2) {
    line(top.concat(bottom.slice(1, -1)), FACE_COLORS.mouth, 1, true, FACE_COLORS.mouth);
    const tongue = v('TongueOut');
    if (tongue > 0.1) ellipse(shift, lowerY, 14, 6 + 14 * tongue, FACE_COLORS.tongue, null, 0, 0, Math.PI);
  }
  line(top, FACE_COLORS.lip, Math.max(2, 3 * s));
  line(bottom, FACE_COLORS.lip, Math.max(2, 3 * s));
}
