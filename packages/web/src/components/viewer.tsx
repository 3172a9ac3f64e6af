import { useEffect, useId, useRef, useState, type PointerEvent } from 'react';
import { drawWindowed, fetchInstance, parseDicomImage, type DicomImage } from '../dicom';

/**
 * A series viewer with window and level. Instances are fetched as DICOM and
 * drawn client-side; sliders (keyboard operable) or dragging on the image set
 * the window: horizontal drag changes width, vertical drag changes level.
 */
export function SeriesViewer({ instances, title }: { instances: ReadonlyArray<{ url: string; label: string }>; title: string }) {
  const [index, setIndex] = useState(0);
  const [img, setImg] = useState<DicomImage | null>(null);
  const [err, setErr] = useState<string | null>(null);
  const [center, setCenter] = useState(0);
  const [width, setWidth] = useState(1);
  const canvas = useRef<HTMLCanvasElement>(null);
  const drag = useRef<{ x: number; y: number; c: number; w: number } | null>(null);
  const id = useId();
  const inst = instances[index];

  useEffect(() => {
    if (!inst) return;
    let live = true;
    setErr(null);
    fetchInstance(inst.url).then((b) => {
      if (!live) return;
      const im = parseDicomImage(b);
      setImg(im);
      setCenter(Math.round(im.windowCenter ?? (im.min + im.max) / 2));
      setWidth(Math.max(1, Math.round(im.windowWidth ?? im.max - im.min)));
    }).catch((e: unknown) => {
      if (live) {
        setImg(null);
        const m = (e as Error).message;
        setErr(/^no route/.test(m) ? 'The server does not serve this image to the browser yet.' : m);
      }
    });
    return () => {
      live = false;
    };
  }, [inst?.url]);

  useEffect(() => {
    if (img && canvas.current) drawWindowed(canvas.current, img, center, width);
  }, [img, center, width]);

  const range = img ? Math.max(1, img.max - img.min) : 1;
  const down = (e: PointerEvent<HTMLCanvasElement>) => {
    (e.target as HTMLCanvasElement).setPointerCapture(e.pointerId);
    drag.current = { x: e.clientX, y: e.clientY, c: center, w: width };
  };
  const move = (e: PointerEvent<HTMLCanvasElement>) => {
    if (!drag.current) return;
    const k = range / 300;
    setWidth(Math.max(1, Math.round(drag.current.w + (e.clientX - drag.current.x) * k)));
    setCenter(Math.round(drag.current.c + (e.clientY - drag.current.y) * k));
  };
  const reset = () => {
    if (!img) return;
    setCenter(Math.round(img.windowCenter ?? (img.min + img.max) / 2));
    setWidth(Math.max(1, Math.round(img.windowWidth ?? img.max - img.min)));
  };

  if (!instances.length) return <p className="muted">No images in this series.</p>;
  return (
    <div className="viewer" data-testid="viewer">
      <div>
        {err ? <div className="note note-error" role="alert">{err}</div> : null}
        <canvas ref={canvas} role="img" aria-label={`${title}, image ${index + 1} of ${instances.length}${img ? `, window level ${center}, width ${width}` : ''}`}
          onPointerDown={down} onPointerMove={move} onPointerUp={() => (drag.current = null)} data-testid="viewer-canvas" />
      </div>
      <div className="viewer-controls">
        {instances.length > 1 ? (
          <div className="field">
            <label htmlFor={`${id}-i`}>Image {index + 1} of {instances.length}</label>
            <input id={`${id}-i`} type="range" min={0} max={instances.length - 1} value={index} onChange={(e) => setIndex(Number(e.target.value))} />
          </div>
        ) : null}
        {img ? (
          <>
            <div className="field">
              <label htmlFor={`${id}-c`}>Window level (centre): {center}</label>
              <input id={`${id}-c`} type="range" min={Math.floor(img.min - range / 2)} max={Math.ceil(img.max + range / 2)} value={center} onChange={(e) => setCenter(Number(e.target.value))} />
            </div>
            <div className="field">
              <label htmlFor={`${id}-w`}>Window width: {width}</label>
              <input id={`${id}-w`} type="range" min={1} max={Math.ceil(range * 2)} value={width} onChange={(e) => setWidth(Number(e.target.value))} />
            </div>
            <button type="button" className="btn btn-secondary btn-small" onClick={reset}>Reset window</button>
            <dl className="kv" style={{ marginTop: '0.75rem' }}>
              <dt>Size</dt><dd>{img.columns} × {img.rows}{img.frames > 1 ? `, ${img.frames} frames (first shown)` : ''}</dd>
              <dt>Values</dt><dd>{Math.round(img.min)} to {Math.round(img.max)}</dd>
              <dt>Photometric</dt><dd>{img.photometric}</dd>
              {inst ? <><dt>Instance</dt><dd>{inst.label}</dd></> : null}
            </dl>
          </>
        ) : !err ? <p className="muted" role="status">Loading image…</p> : null}
      </div>
    </div>
  );
}
