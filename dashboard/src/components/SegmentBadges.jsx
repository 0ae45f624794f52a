// Segment badges of a visitor: the names of the segments they are in now (from the site's
// segment list; an id we have no name for yet triggers a reload of that list).
import { useEffect } from 'preact/hooks';
import { link } from '../lib/router.js';
import { noteUnknownSegment, segmentName } from '../lib/segments.js';

export function SegmentBadges({ ids, names, siteId, max = 99, links = false, empty = null }) {
  const list = ids || [];
  const unknown = list.some((id) => !names.has(id));
  useEffect(() => {
    if (unknown && siteId) noteUnknownSegment(siteId);
  }, [unknown, siteId]);
  if (!list.length) return empty;
  const shown = list.slice(0, max);
  const rest = list.length - shown.length;
  const all = list.map((id) => segmentName(names, id)).join(', ');
  return (
    <span class="seg-badges" title={all}>
      {shown.map((id) =>
        links ? (
          <a key={id} class="seg-badge" data-segment={id} href={link(`/sites/${siteId}/segments/${id}`)}>
            {segmentName(names, id)}
          </a>
        ) : (
          <span key={id} class="seg-badge" data-segment={id}>
            {segmentName(names, id)}
          </span>
        ),
      )}
      {rest > 0 ? <span class="seg-badge seg-more">+{rest}</span> : null}
    </span>
  );
}
