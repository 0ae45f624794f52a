// Financing page: a payment calculator and the application form (the shop's conversion goal).
(function () {
  'use strict';
  var APR = 4.9;
  var sku = document.getElementById('sku');
  var down = document.getElementById('down');
  var term = document.getElementById('term');
  var monthly = document.getElementById('monthly');
  var wanted = new URLSearchParams(location.search).get('sku');
  if (wanted && sku.querySelector('option[value="' + CSS.escape(wanted) + '"]')) sku.value = wanted;

  function price() {
    return Number(sku.selectedOptions[0].getAttribute('data-price'));
  }
  function payment() {
    var principal = Math.max(0, price() - (Number(down.value) || 0));
    var n = Number(term.value);
    var r = APR / 100 / 12;
    return principal * r / (1 - Math.pow(1 + r, -n));
  }
  function render() {
    var value = Math.round(payment());
    monthly.firstChild.textContent = '$' + value.toLocaleString('en-US') + ' ';
  }
  document.getElementById('apr').textContent = String(APR);
  document.getElementById('calc').addEventListener('input', render);
  document.getElementById('calc').addEventListener('change', function () {
    lookout('track', 'financing_estimate', { sku: sku.value, term: Number(term.value), monthly: Math.round(payment()) });
  });
  render();

  document.getElementById('apply').addEventListener('submit', function (event) {
    event.preventDefault();
    var form = event.target;
    var email = form.elements.email.value.trim();
    // A real shop would identify a signed-in customer by its own user id.
    lookout('identify', email, { name: form.elements.name.value.trim(), email: email });
    lookout('track', 'financing_application', {
      sku: sku.value,
      amount: Math.max(0, price() - (Number(down.value) || 0)),
      term: Number(term.value),
    });
    form.querySelector('button[type=submit]').disabled = true;
    document.getElementById('applied').classList.add('show');
  });
})();
