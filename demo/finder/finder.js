// Car finder: a small single-page app under /demo/finder/. It renders the stock of /demo/cars.js
// and navigates with history.pushState between the list (/demo/finder/, filters in the query
// string) and deep links to each car (/demo/finder/tesla-model-3), which the server answers with
// this same page. The Lookout snippet sees these navigations by itself; the app only reports its
// own events. Like the car pages, a car's view describes the car with schema.org JSON-LD in the
// <head>, replaced on every navigation (the list has none): the snippet reads it with each page
// view, which it reports 50 ms after the navigation, once this app has rendered.
(function () {
  'use strict';
  var BASE = '/demo/finder/';
  var app = document.getElementById('app');
  var data = window.northgateStock;

  function h(tag, attrs, children) {
    var el = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') el.textContent = attrs[k];
      else if (k === 'html') el.innerHTML = attrs[k]; // only our own static SVG
      else el.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) {
      if (c) el.appendChild(c);
    });
    return el;
  }
  function money(n) {
    return '$' + n.toLocaleString('en-US');
  }
  var HEART = '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true"><path d="M20.8 4.6a5.5 5.5 0 0 0-7.8 0L12 5.7l-1-1.1a5.5 5.5 0 0 0-7.8 7.8l1 1.1L12 21l7.8-7.5 1-1.1a5.5 5.5 0 0 0 0-7.8z"/></svg>';

  function art(car) {
    var s = data.shapes[car.shape];
    var out = '<svg class="car-art paint-' + car.paint + '" viewBox="0 0 320 130" aria-hidden="true">' +
      '<ellipse class="shadow" cx="160" cy="114" rx="146" ry="8"/>' +
      '<path fill="currentColor" d="' + s.body + '"/><path fill="#000" opacity=".14" d="' + s.shade + '"/>';
    s.glass.forEach(function (g) {
      out += '<path class="glass" d="' + g + '"/>';
    });
    out += '<ellipse class="light" cx="' + s.light[0] + '" cy="' + s.light[1] + '" rx="8" ry="3"/>';
    s.wheels.forEach(function (w) {
      out += '<circle class="tyre" cx="' + w[0] + '" cy="98" r="' + w[1] + '"/><circle class="rim" cx="' + w[0] + '" cy="98" r="' + Math.floor(w[1] / 2) + '"/>';
    });
    return out + '</svg>';
  }

  function link(href, attrs, children) {
    attrs = attrs || {};
    attrs.href = href;
    attrs['data-route'] = '';
    return h('a', attrs, children);
  }

  function favButton(car, big) {
    var b = h('button', big
      ? { class: 'btn ghost', type: 'button', 'data-favorite': '', 'data-sku': car.sku, 'aria-pressed': 'false', html: HEART }
      : { class: 'icon-btn', type: 'button', 'data-favorite': '', 'data-sku': car.sku, 'aria-pressed': 'false', 'aria-label': 'Add ' + car.name + ' to favorites', html: HEART });
    if (big) b.appendChild(h('span', { 'data-fav-label': '', text: 'Add to favorites' }));
    return b;
  }

  function card(car) {
    return h('article', { class: 'car' }, [
      h('div', { class: 'pic' }, [link(BASE + car.slug, { tabindex: '-1', 'aria-hidden': 'true', html: art(car) })]),
      h('div', { class: 'info' }, [
        h('div', {}, [h('span', { class: car.fuel === 'Electric' ? 'chip ev' : 'chip', text: car.fuel })]),
        h('h3', {}, [link(BASE + car.slug, { text: car.name })]),
        h('div', { class: 'meta', text: car.year + ' · ' + car.trim + ' · ' + car.body }),
        h('div', { class: 'row' }, [h('span', { class: 'price', text: money(car.price) }), favButton(car)]),
      ]),
    ]);
  }

  function filtersOf(params) {
    return {
      brand: params.get('brand') || '',
      body: params.get('body') || '',
      max: Number(params.get('max')) || 0,
    };
  }

  function listUrl(f) {
    var q = new URLSearchParams();
    if (f.brand) q.set('brand', f.brand);
    if (f.body) q.set('body', f.body);
    if (f.max) q.set('max', String(f.max));
    var s = q.toString();
    return BASE + (s ? '?' + s : '');
  }

  function pills(label, options, value, key, f) {
    return [
      h('h3', { text: label }),
      h('div', { class: 'pills' }, options.map(function (o) {
        var next = Object.assign({}, f);
        next[key] = o.value === value ? '' : o.value;
        var attrs = { class: 'pill', text: o.label, 'data-filter': key };
        if (o.value === value) attrs['aria-current'] = 'true';
        return link(listUrl(next), attrs);
      })),
    ];
  }

  function renderList(params) {
    var f = filtersOf(params);
    var cars = data.cars.filter(function (c) {
      return (!f.brand || c.brand === f.brand) && (!f.body || c.body === f.body) && (!f.max || c.price <= f.max);
    });
    var brandName = f.brand && data.brands.filter(function (b) { return b.slug === f.brand; })[0];
    document.title = (brandName ? brandName.name + ' cars' : 'Car finder') + ' · Northgate Motors';
    var aside = h('aside', { class: 'panel filters', 'aria-label': 'Filters' }, []
      .concat(pills('Brand', data.brands.map(function (b) { return { value: b.slug, label: b.name }; }), f.brand, 'brand', f))
      .concat(pills('Body', [{ value: 'Sedan', label: 'Sedan' }, { value: 'SUV', label: 'SUV' }], f.body, 'body', f))
      .concat(pills('Budget', [{ value: 35000, label: 'Under $35k' }, { value: 50000, label: 'Under $50k' }, { value: 70000, label: 'Under $70k' }], f.max, 'max', f)));
    var results = h('div', {}, [
      h('div', { class: 'section-head' }, [
        h('div', {}, [h('h1', { text: 'Car finder' }), h('p', { class: 'muted', text: cars.length + (cars.length === 1 ? ' car matches' : ' cars match') + ' your filters.' })]),
      ]),
      cars.length ? h('div', { class: 'grid' }, cars.map(card)) : h('p', { class: 'empty', text: 'No car matches. Try a larger budget.' }),
    ]);
    return h('div', { class: 'finder' }, [aside, results]);
  }

  function renderCar(car) {
    document.title = car.year + ' ' + car.name + ' · Car finder · Northgate Motors';
    var finance = h('a', { class: 'btn', href: '/demo/financing.html?sku=' + encodeURIComponent(car.sku), text: 'Finance this car' });
    return h('div', { class: 'detail' }, [
      h('div', {}, [
        link(listUrl({ brand: car.brand }), { class: 'back', text: '← All ' + car.brand_name + ' cars' }),
        h('div', { class: 'stage', html: art(car) }),
      ]),
      h('div', { class: 'panel' }, [
        h('span', { class: car.fuel === 'Electric' ? 'chip ev' : 'chip', text: car.fuel }),
        h('h1', { text: car.name }),
        h('p', { class: 'muted', text: car.year + ' · ' + car.trim + ' · SKU ' + car.sku }),
        h('div', { class: 'price', text: money(car.price) }),
        h('div', { class: 'actions' }, [finance, favButton(car, true)]),
        h('p', { text: car.blurb }),
        h('ul', { class: 'specs' }, [
          ['Range', car.range], ['Power', car.power], ['0–60 mph', car.accel], [car.body, car.seats + ' seats'],
        ].map(function (s) {
          return h('li', {}, [h('b', { text: s[1] }), h('span', { text: s[0] })]);
        })),
        h('p', { class: 'small muted' }, [h('a', { href: car.url, text: 'Open the full ' + car.name + ' page' })]),
      ]),
    ]);
  }

  // The JSON-LD of the car shown (null: none), as on the car's own page.
  function describe(car) {
    var old = document.getElementById('car-ld');
    if (old) old.remove();
    if (!car) return;
    document.head.appendChild(h('script', {
      type: 'application/ld+json',
      id: 'car-ld',
      text: JSON.stringify({
        '@context': 'https://schema.org',
        '@type': 'Car',
        name: car.name,
        brand: { '@type': 'Brand', name: car.brand_name },
        model: car.model,
        vehicleModelDate: String(car.year),
        bodyType: car.body,
        fuelType: car.fuel,
        color: car.paint,
        vehicleConfiguration: car.trim,
        seatingCapacity: car.seats,
        sku: car.sku,
        offers: {
          '@type': 'Offer',
          price: car.price,
          priceCurrency: 'USD',
          availability: 'https://schema.org/InStock',
          url: car.url,
        },
      }, null, 2),
    }));
  }

  function render() {
    var path = location.pathname;
    var slug = path.indexOf(BASE) === 0 ? decodeURIComponent(path.slice(BASE.length)).replace(/\/+$/, '') : '';
    var view;
    var shown = null;
    if (!slug) {
      view = renderList(new URLSearchParams(location.search));
    } else {
      var car = data.cars.filter(function (c) { return c.slug === slug; })[0];
      if (car) {
        view = renderCar(car);
        shown = car;
      } else {
        document.title = 'Not found · Car finder · Northgate Motors';
        view = h('div', { class: 'block' }, [
          h('p', { class: 'empty', text: 'We could not find that car.' }),
          h('p', {}, [link(BASE, { text: '← Back to the car finder' })]),
        ]);
      }
    }
    describe(shown);
    app.replaceChildren(view);
    if (window.northgate) window.northgate.paintFavorites(app);
  }

  function go(url) {
    history.pushState(null, '', url);
    render();
    window.scrollTo(0, 0);
  }

  app.addEventListener('click', function (event) {
    var a = event.target.closest && event.target.closest('a[data-route]');
    if (!a || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    var filter = a.getAttribute('data-filter');
    if (filter) {
      var next = filtersOf(new URL(a.href).searchParams);
      lookout('track', 'finder_filter', { filter: filter, brand: next.brand, body: next.body, max: next.max });
    }
    go(a.getAttribute('href'));
  });
  window.addEventListener('popstate', render);

  if (data) render();
  else app.replaceChildren(h('p', { class: 'empty', text: 'The car finder could not load its data. Please reload the page.' }));
})();
